"""OpenAI's Files API over the tenant's documents: a file is a document, the same row and id as in
/v1/documents, indexed once uploaded (so it is in the tenant's `vs_default` store, which chat answers from)
and searchable in any store it is attached to. Purposes: `assistants` and `user_data`.

Always the caller's tenant's: another tenant's file id is 404, exactly as an id that never existed.
"""

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse

from ragserve.errors import DocumentNotFoundError, InvalidRequestError
from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.pages import PageDep
from ragserve.service.uploads import receive_upload
from ragserve.state.documents import PURPOSES, DocumentRow, Purpose

__all__ = ["FILES_PATH", "router"]

FILES_PATH = "/v1/files"
_FIELDS = frozenset({"file", "purpose"})
_STATUS = {"in_progress": "uploaded", "completed": "processed", "failed": "error"}

router = APIRouter(prefix="/v1", tags=["files"])


def file_json(document: DocumentRow) -> dict[str, Any]:
    return {
        "id": document.id,
        "object": "file",
        "bytes": document.bytes,
        "created_at": int(document.created_at.timestamp()),
        "filename": document.filename,
        "purpose": document.purpose,
        "status": _STATUS.get(document.status, "uploaded"),
        "status_details": document.error,
        "expires_at": None,
    }


@router.post("/files")
async def create_file(
    request: Request,
    state: StateDep,
    tenant: TenantDep,
    file: Annotated[UploadFile, File(description="The document")],
    purpose: Annotated[str, Form(max_length=32)],
) -> dict[str, Any]:
    """Stores the file as one of the tenant's documents and indexes it in the background (`status`:
    `uploaded`, then `processed`, or `error` with `status_details`). The same bytes again: the same file."""
    unknown = sorted(set((await request.form()).keys()) - _FIELDS)
    if unknown:
        raise InvalidRequestError(f"{unknown[0]}: not supported by ragserve's Files API", param=unknown[0])
    if purpose not in PURPOSES:
        raise InvalidRequestError(
            f"purpose: {purpose!r} is not supported: ragserve's files are documents to search and answer "
            f"from; use one of {', '.join(PURPOSES)}",
            param="purpose",
        )
    valid: Purpose = "user_data" if purpose == "user_data" else "assistants"
    return file_json(await receive_upload(state, tenant, file, valid))


@router.get("/files")
async def list_files(
    state: StateDep,
    tenant: TenantDep,
    page: PageDep,
    purpose: Annotated[Literal["assistants", "user_data"] | None, Query()] = None,
) -> dict[str, Any]:
    documents = await asyncio.to_thread(state.library.store.all, tenant)
    chosen = [d for d in documents if purpose is None or d.purpose == purpose]
    return page.of(chosen, lambda d: d.id, file_json)


@router.get("/files/{file_id}")
async def get_file(file_id: str, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    return file_json(await asyncio.to_thread(state.library.store.get, tenant, file_id, "file"))


@router.delete("/files/{file_id}")
async def delete_file(file_id: str, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    """Gone from every store and every reader at once; its chunks and bytes are removed in the background."""
    document = await state.library.delete(tenant, file_id, "file")
    return {"id": document.id, "object": "file", "deleted": True}


@router.get("/files/{file_id}/content", response_class=FileResponse)
async def file_content(file_id: str, state: StateDep, tenant: TenantDep) -> FileResponse:
    """The bytes as uploaded, as a download (never rendered by a browser)."""
    document = await asyncio.to_thread(state.library.store.get, tenant, file_id, "file")
    path = state.library.path_of(document)
    if not await asyncio.to_thread(path.is_file):
        raise DocumentNotFoundError(f"file {file_id!r} has no stored bytes: upload it again")
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=document.filename,
        headers={"X-Content-Type-Options": "nosniff"},
    )
