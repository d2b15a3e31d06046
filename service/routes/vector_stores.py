"""OpenAI's Vector Stores API over the tenant's documents (service/vector_stores.py says what a store is):
stores, their files, file batches and search. Always the caller's tenant's: another tenant's store, file or
batch id is 404, exactly as one that never existed."""

import asyncio
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from ragserve.service.deps import StateDep, TenantDep
from ragserve.service.pages import PageDep
from ragserve.service.retrieval import retrieve_hits
from ragserve.service.state import ServiceState
from ragserve.service.vector_store_schemas import (
    AttachFile,
    AttachFiles,
    CreateVectorStore,
    SearchRequest,
    UpdateAttributes,
    UpdateVectorStore,
)
from ragserve.service.vector_stores import POLL_AFTER_MS, store_file_json
from ragserve.state.vector_stores import Attributes, BatchRow

__all__ = ["router"]

router = APIRouter(prefix="/v1/vector_stores", tags=["vector stores"])
StoreId = Annotated[str, Path(description="A vector store's id; vs_default: all the tenant's documents")]
FileStatus = Literal["in_progress", "completed", "failed", "cancelled"]


def _poll_after(response: Response, status: str) -> None:
    if status == "in_progress":  # the SDKs' polling helpers wait this long before asking again
        response.headers["openai-poll-after-ms"] = POLL_AFTER_MS


@router.post("")
async def create_store(body: CreateVectorStore, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    stores = state.vector_stores
    files: list[tuple[str, Attributes]] = [(i, {}) for i in body.file_ids]
    row = await asyncio.to_thread(stores.rows.create, tenant, body.name, body.metadata or {}, files)
    return await asyncio.to_thread(stores.describe, tenant, row.id)


@router.get("")
async def list_stores(state: StateDep, tenant: TenantDep, page: PageDep) -> dict[str, Any]:
    described = await asyncio.to_thread(state.vector_stores.describe_all, tenant)
    return page.of(described, lambda s: str(s["id"]), dict)


@router.get("/{store_id}")
async def get_store(store_id: StoreId, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    return await asyncio.to_thread(state.vector_stores.describe, tenant, store_id)


@router.post("/{store_id}")
async def update_store(
    store_id: StoreId, body: UpdateVectorStore, state: StateDep, tenant: TenantDep
) -> dict[str, Any]:
    stores = state.vector_stores
    await asyncio.to_thread(stores.rows.update, tenant, stores.writable(store_id), body.name, body.metadata)
    return await asyncio.to_thread(stores.describe, tenant, store_id)


@router.delete("/{store_id}")
async def delete_store(store_id: StoreId, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    """The store goes; its files stay the tenant's."""
    stores = state.vector_stores
    await asyncio.to_thread(stores.rows.delete, tenant, stores.writable(store_id))
    return {"id": store_id, "object": "vector_store.deleted", "deleted": True}


@router.post("/{store_id}/search")
async def search_store(
    store_id: StoreId, body: SearchRequest, state: StateDep, tenant: TenantDep
) -> dict[str, Any]:
    threshold = body.ranking_options.score_threshold if body.ranking_options else 0.0
    found = await state.vector_stores.search(
        partial(retrieve_hits, state),
        tenant,
        [store_id],
        body.queries(),
        body.max_num_results,
        body.filters,
        threshold,
    )
    return {
        "object": "vector_store.search_results.page",
        "search_query": body.queries(),
        "data": [hit.to_json() for hit in found],
        "has_more": False,
        "next_page": None,
    }


# -- a store's files --


@router.post("/{store_id}/files")
async def attach_file(
    store_id: StoreId, body: AttachFile, state: StateDep, tenant: TenantDep, response: Response
) -> dict[str, Any]:
    stores = state.vector_stores
    pair = (body.file_id, dict(body.attributes or {}))
    await asyncio.to_thread(stores.rows.attach, tenant, stores.writable(store_id), [pair])
    return await _file(state, tenant, store_id, body.file_id, response)


@router.get("/{store_id}/files")
async def list_store_files(
    store_id: StoreId,
    state: StateDep,
    tenant: TenantDep,
    page: PageDep,
    status: Annotated[FileStatus | None, Query(alias="filter")] = None,
) -> dict[str, Any]:
    files = await asyncio.to_thread(state.vector_stores.files, tenant, [store_id])
    chosen = [f for f in files if status is None or f.document.status == status]
    return page.of(chosen, lambda f: f.document.id, store_file_json)


@router.get("/{store_id}/files/{file_id}")
async def get_store_file(
    store_id: StoreId, file_id: str, state: StateDep, tenant: TenantDep, response: Response
) -> dict[str, Any]:
    return await _file(state, tenant, store_id, file_id, response)


@router.post("/{store_id}/files/{file_id}")
async def update_store_file(
    store_id: StoreId,
    file_id: str,
    body: UpdateAttributes,
    state: StateDep,
    tenant: TenantDep,
    response: Response,
) -> dict[str, Any]:
    stores = state.vector_stores
    attributes = dict(body.attributes or {})
    await asyncio.to_thread(
        stores.rows.set_attributes, tenant, stores.writable(store_id), file_id, attributes
    )
    return await _file(state, tenant, store_id, file_id, response)


@router.delete("/{store_id}/files/{file_id}")
async def detach_file(store_id: StoreId, file_id: str, state: StateDep, tenant: TenantDep) -> dict[str, Any]:
    """The file leaves the store at once; it stays the tenant's (DELETE /v1/files/{id} deletes it)."""
    stores = state.vector_stores
    await asyncio.to_thread(stores.rows.file, tenant, stores.writable(store_id), file_id)
    await asyncio.to_thread(stores.rows.detach, tenant, store_id, [file_id])
    return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}


@router.get("/{store_id}/files/{file_id}/content")
async def store_file_content(
    store_id: StoreId, file_id: str, state: StateDep, tenant: TenantDep
) -> dict[str, Any]:
    """The file's text as it was indexed: its chunks, in order."""
    stores = state.vector_stores
    found = await asyncio.to_thread(stores.file_row, tenant, store_id, file_id)
    source = stores.library.source_of(found.document)
    chunks = await asyncio.to_thread(state.retriever.document_text, tenant, source)
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": c} for c in chunks],
        "has_more": False,
        "next_page": None,
    }


async def _file(
    state: ServiceState, tenant: str, store_id: str, file_id: str, response: Response
) -> dict[str, Any]:
    found = await asyncio.to_thread(state.vector_stores.file_row, tenant, store_id, file_id)
    body = store_file_json(found)
    _poll_after(response, body["status"])
    return body


# -- batches --


async def _batch(state: ServiceState, tenant: str, batch: BatchRow, response: Response) -> dict[str, Any]:
    described = await asyncio.to_thread(state.vector_stores.batch_json, tenant, batch)
    _poll_after(response, described["status"])
    return described


@router.post("/{store_id}/file_batches")
async def create_batch(
    store_id: StoreId, body: AttachFiles, state: StateDep, tenant: TenantDep, response: Response
) -> dict[str, Any]:
    stores = state.vector_stores
    batch = await asyncio.to_thread(stores.rows.create_batch, tenant, stores.writable(store_id), body.pairs())
    return await _batch(state, tenant, batch, response)


@router.get("/{store_id}/file_batches/{batch_id}")
async def get_batch(
    store_id: StoreId, batch_id: str, state: StateDep, tenant: TenantDep, response: Response
) -> dict[str, Any]:
    batch = await asyncio.to_thread(state.vector_stores.rows.batch, tenant, store_id, batch_id)
    return await _batch(state, tenant, batch, response)


@router.post("/{store_id}/file_batches/{batch_id}/cancel")
async def cancel_batch(
    store_id: StoreId, batch_id: str, state: StateDep, tenant: TenantDep
) -> dict[str, Any]:
    """Files of the batch still being indexed leave the store (they stay the tenant's files)."""
    stores = state.vector_stores
    files = await asyncio.to_thread(stores.files, tenant, [store_id])
    unfinished = [f.document.id for f in files if f.document.status == "in_progress"]
    batch = await asyncio.to_thread(stores.rows.cancel_batch, tenant, store_id, batch_id, unfinished)
    return await asyncio.to_thread(stores.batch_json, tenant, batch)


@router.get("/{store_id}/file_batches/{batch_id}/files")
async def list_batch_files(
    store_id: StoreId,
    batch_id: str,
    state: StateDep,
    tenant: TenantDep,
    page: PageDep,
    status: Annotated[FileStatus | None, Query(alias="filter")] = None,
) -> dict[str, Any]:
    stores = state.vector_stores
    batch = await asyncio.to_thread(stores.rows.batch, tenant, store_id, batch_id)
    files = await asyncio.to_thread(stores.files, tenant, [store_id])
    chosen = [
        f
        for f in files
        if f.document.id in batch.document_ids and (status is None or f.document.status == status)
    ]
    return page.of(chosen, lambda f: f.document.id, store_file_json)
