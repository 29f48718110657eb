"""The pipe utilities of CJJ 61-2017 (table `pipe_categories`): names and colours for legends and clients.

Public, since names and colours are not secret; each entry says whether the caller may read that
utility's network and, to a caller who may, whether the network has any segment.
"""
from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from services import auth

router = APIRouter(tags=["Pipe networks"])
Caller = Annotated[auth.Caller, Depends(auth.caller)]

# One index probe per utility (pipe_segments_utility): cheap enough to ask on every request.
_CATEGORIES = sa.text("""
    select c.utility, c.cjj_code, c.name_zh, c.name_en, c.color,
           exists (select 1 from pipe_segments s where s.utility = c.utility) has_data
    from pipe_categories c order by c.utility""")


class PipeCategory(BaseModel):
    utility: str = Field(description="the utility's key, as in `pipe_segments.utility`", examples=["water"])
    cjj_code: str = Field(description="CJJ 61-2017 code", examples=["JS"])
    name_zh: str = Field(examples=["给水"])
    name_en: str = Field(examples=["water supply"])
    color: list[int] = Field(description="CJJ 61 colour, red, green, blue (0-255)", examples=[[0, 255, 255]])
    restricted: bool = Field(description="its network needs an API key of a role granted it (as "
                                         "`access_layers` says; seeded from `pipe_categories.restricted`)")
    collection: str = Field(description="the feature collection of its segments", examples=["pipes_water"])
    readable: bool = Field(description="whether the caller may read its network")
    has_data: bool | None = Field(description="whether the network has segments; null when the caller "
                                              "may not read it")


class PipeCategories(BaseModel):
    categories: list[PipeCategory]

    model_config = {"json_schema_extra": {"examples": [{"categories": [
        {"utility": "gas", "cjj_code": "RQ", "name_zh": "燃气", "name_en": "gas", "color": [255, 0, 255],
         "restricted": True, "collection": "pipes_gas", "readable": False, "has_data": None},
        {"utility": "water", "cjj_code": "JS", "name_zh": "给水", "name_en": "water supply",
         "color": [0, 255, 255], "restricted": True, "collection": "pipes_water", "readable": True,
         "has_data": True}]}]}}


def _category(row, who: auth.Caller, engine: sa.Engine) -> PipeCategory:
    collection = f"pipes_{row.utility}"
    readable = auth.may_read(who, collection, engine)
    return PipeCategory(utility=row.utility, cjj_code=row.cjj_code, name_zh=row.name_zh, name_en=row.name_en,
                        color=list(row.color), restricted=auth.is_restricted(collection, engine),
                        collection=collection, readable=readable, has_data=row.has_data if readable else None)


@router.get("/pipe-categories", response_model=PipeCategories,
            summary="Pipe utilities (CJJ 61): names, colours, and which the caller may read")
def pipe_categories(who: Caller) -> PipeCategories:
    engine = auth.current_engine()
    with engine.connect() as conn:
        rows = conn.execute(_CATEGORIES).all()
    return PipeCategories(categories=[_category(r, who, engine) for r in rows])
