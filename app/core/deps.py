"""Request-level dependencies shared by every domain's routers."""

from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings
from app.core.redact import Redactor


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_redactor(request: Request) -> Redactor:
    return request.app.state.redactor  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
RedactorDep = Annotated[Redactor, Depends(get_redactor)]
