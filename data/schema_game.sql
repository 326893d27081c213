-- The guide's db2: the "game" database. Rooms, players, every accepted answer, final results.
CREATE TABLE IF NOT EXISTS room (
    id          VARCHAR(16) NOT NULL PRIMARY KEY,
    host_id     INT UNSIGNED NOT NULL,
    questions   TINYINT UNSIGNED NOT NULL,
    seconds     DECIMAL(6, 3) NOT NULL,
    status      VARCHAR(16) NOT NULL DEFAULT 'lobby',
    created_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    finished_at TIMESTAMP(3) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS room_question (
    room_id     VARCHAR(16) NOT NULL,
    position    TINYINT UNSIGNED NOT NULL,
    question_id INT UNSIGNED NOT NULL,
    PRIMARY KEY (room_id, position),
    UNIQUE KEY room_question_once (room_id, question_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS player (
    room_id   VARCHAR(16) NOT NULL,
    user_id   INT UNSIGNED NOT NULL,
    nickname  VARCHAR(32) NOT NULL,
    joined_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (room_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS answer (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    room_id     VARCHAR(16) NOT NULL,
    question_id INT UNSIGNED NOT NULL,
    user_id     INT UNSIGNED NOT NULL,
    choice      TINYINT UNSIGNED NOT NULL,
    correct     BOOLEAN NOT NULL,
    elapsed_ms  INT UNSIGNED NOT NULL,
    points      SMALLINT UNSIGNED NOT NULL,
    created_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY answer_once (room_id, question_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS result (
    room_id  VARCHAR(16) NOT NULL,
    user_id  INT UNSIGNED NOT NULL,
    nickname VARCHAR(32) NOT NULL,
    score    INT UNSIGNED NOT NULL,
    `rank`   SMALLINT UNSIGNED NOT NULL,
    PRIMARY KEY (room_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
