from django.db import models


class StudyUser(models.Model):
    """The study database's `user` table, for the ORM side of chapter 08's comparison.

    Unmanaged: the schema belongs to data/schema_study.sql, not to migrations, and the app's
    database user has no DDL rights anyway.
    """

    nickname = models.CharField(max_length=32)
    created_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "user"
