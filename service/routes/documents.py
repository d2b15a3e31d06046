"""A tenant's documents over HTTP: upload (multipart), list, get, delete; indexed in the background.

Always the caller's tenant's: another tenant's document id is 404, exactly as an id that never existed. The
type comes from the bytes (ingest/sniffing.py), never from the name or the client's content type; the name is
kept only as a harmless file name (service/library.py). Tenants whose documents come from a folder on the
server (ragserve.toml's) are indexed from it, as before, and take no uploads.
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile

from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.uploads import receive_upload

__all__ = ["UPLOAD_PATH", "router"]

UPLOAD_PATH = "/v1/documents"

router = APIRouter(prefix="/v1", tags=["documents"])


@router.post("/documents", status_code=202)
async def upload_document(
    state: StateDep, tenant: TenantDep, file: Annotated[UploadFile, File(description="The document")]
) -> dict[str, Any]:
    """Stores the file and indexes it in the background: `status` is `in_progress`, then `completed`, or
    `failed` with its `error`. The same bytes again are the same document (202, nothing indexed twice)."""
    return (await receive_upload(state, tenant, file)).to_json()


@router.get("/documents")
async def list_documents(state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    documents = await asyncio.to_thread(state.library.store.all, tenant)
    return {"object": "list", "data": [d.to_json() for d in documents]}


@router.get("/documents/{document_id}")
async def get_document(document_id: str, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    return (await asyncio.to_thread(state.library.store.get, tenant, document_id)).to_json()


@router.delete("/documents/{document_id}")
async def delete_document(document_id: str, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    """Gone for every reader at once; its chunks and bytes are removed in the background."""
    document = await state.library.delete(tenant, document_id)
    return {"id": document.id, "object": "document", "deleted": True}
