"""Creative replies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class AssetOut(BaseModel):
    id: str
    campaign_id: str
    brand_id: str
    kind: Literal["image", "video"]
    content_type: str
    bytes: int
    width: int | None
    height: int | None
    sha256: str
    overlay_width: int | None = Field(description="the overlay rendition's size (images larger than 1280×720)")
    overlay_height: int | None
    file_url: str = Field(description="the file (its brand, the server key and admins)")
    created_at: datetime
