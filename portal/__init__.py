"""The project package and the platform every other app stands on."""

from .celery import app as celery_app

__all__ = ("celery_app",)
