"""Request-level dependencies shared by every domain's routers."""

from typing import Annotated

from fastapi import Depends, Request

from app.core.redact import PayloadRules
from app.core.state import core_state


async def get_payload_rules(request: Request) -> PayloadRules:
    return core_state(request.app).payload_rules


PayloadRulesDep = Annotated[PayloadRules, Depends(get_payload_rules)]
