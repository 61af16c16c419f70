"""Mounting the console on the application: its routes, static files and session signer."""

import secrets
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.console.router import router
from app.console.session import SessionSigner
from app.core.config import Settings

STATIC_DIR = Path(__file__).parent / "static"


def install_console(app: FastAPI, settings: Settings) -> None:
    secret = (
        settings.console_secret.get_secret_value().encode()
        if settings.console_secret is not None
        else secrets.token_bytes(32)
    )
    app.state.console_signer = SessionSigner(secret, settings.console_session_minutes * 60)
    app.state.console_tail = None
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="console-static")
