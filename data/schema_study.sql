-- The guide's db1: the "study" database. Users and the question bank.
CREATE TABLE IF NOT EXISTS user (
    id         INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    nickname   VARCHAR(32) NOT NULL,
    created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS question (
    id       INT UNSIGNED NOT NULL PRIMARY KEY,
    category VARCHAR(32) NOT NULL,
    lang     CHAR(2) NOT NULL,
    text     VARCHAR(400) NOT NULL,
    choices  TEXT NOT NULL,          -- JSON array of strings
    answer   TINYINT UNSIGNED NOT NULL,  -- 0-based index into choices; never sent before the reveal
    KEY question_category (category)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
