"""Reading callback bodies with a hard size cap, declared or actually sent."""

from __future__ import annotations

from aiohttp import web


class BodyTooLarge(Exception):
    pass


async def read_capped(request: web.Request, limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body of {declared} bytes declared; the limit is {limit}")
    data = bytearray()
    async for chunk in request.content.iter_chunked(65_536):
        data += chunk
        if len(data) > limit:
            raise BodyTooLarge(f"body exceeds the limit of {limit} bytes")
    return bytes(data)
