"""Request-level dependencies shared by every domain's routers."""

from typing import Annotated

from fastapi import Depends, Request

from app.core.redact import PayloadRules


async def get_payload_rules(request: Request) -> PayloadRules:
    rules: PayloadRules = request.app.state.payload_rules
    return rules


PayloadRulesDep = Annotated[PayloadRules, Depends(get_payload_rules)]
