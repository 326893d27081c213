from django.apps import AppConfig


class AnswerGameConfig(AppConfig):
    name = "answer_game"
