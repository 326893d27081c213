"""What every test of the project needs: Django set up, and the app's lifespan running."""

import os

import django
import pytest
from asgiref.testing import ApplicationCommunicator
from django.test.utils import setup_test_environment, teardown_test_environment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "course_project.settings")
django.setup()


@pytest.fixture(scope="session", autouse=True)
def test_environment():
    setup_test_environment()  # Django's test client talks to host "testserver": allow it
    yield
    teardown_test_environment()


@pytest.fixture
async def app():
    """The ASGI application with its lifespan started, as uvicorn runs it: the pools open and the
    game hub running on the test's event loop; shut down after the test."""
    from course_project.asgi import application

    lifespan = ApplicationCommunicator(application, {"type": "lifespan"})
    await lifespan.send_input({"type": "lifespan.startup"})
    started = await lifespan.receive_output(10)
    assert started["type"] == "lifespan.startup.complete", started.get("message")
    yield application
    await lifespan.send_input({"type": "lifespan.shutdown"})
    assert (await lifespan.receive_output(10))["type"] == "lifespan.shutdown.complete"
