"""GET /v1/usage: tokens per user (x-user-id) and scenario."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ._auth import Caller
from ._schemas import UsageListOut
from ._service import Gateway, caller, gateway

__all__ = ["router"]

router = APIRouter()


@router.get("/v1/usage")
async def usage(
    gw: Annotated[Gateway, Depends(gateway)],
    who: Annotated[Caller, Depends(caller)],
    user: str | None = None,
    scenario: str | None = None,
) -> UsageListOut:
    # a key sees the usage recorded under it, summed per user id and scenario
    rows = await gw.store.usage(key_id=who.key_id, user=user, scenario=scenario)
    return UsageListOut(data=rows)
