"""WSGI entry point for gunicorn: ``gunicorn 'gateway.wsgi:app'``; settings from NIMBO_*."""

from gateway.app import create_app

app = create_app()
