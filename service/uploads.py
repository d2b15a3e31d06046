"""An uploaded file made a tenant's document: size-checked, typed by its bytes, stored and queued for
indexing. The one path of the documents API and of the Files API."""

import asyncio
import hashlib

from fastapi import UploadFile

from ragserve.errors import ConflictError, PayloadTooLargeError
from ragserve.ingest.sniffing import sniff_format
from ragserve.service.library import safe_filename
from ragserve.service.state import ServiceState
from ragserve.state.documents import DocumentRow, Purpose

__all__ = ["MULTIPART_OVERHEAD", "receive_upload"]

MULTIPART_OVERHEAD = 64 * 1024  # the form's boundaries and part headers, on top of the file's own bytes


async def receive_upload(
    state: ServiceState, tenant: str, file: UploadFile, purpose: Purpose = "assistants"
) -> DocumentRow:
    """The tenant's document for these bytes (the existing one if it has them); indexing in the background.
    Tenants whose documents come from a folder on the server take no uploads (409)."""
    limit = state.settings.max_file_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"the file is over {limit} bytes (RAGSERVE_MAX_FILE_BYTES)")
    if (await asyncio.to_thread(state.tenants.get, tenant)).docs is not None:
        raise ConflictError(
            f"tenant {tenant}'s documents come from its folder on the server: change them there and re-index"
        )
    name = file.filename or "document"
    fmt = sniff_format(data, name)
    sha256 = hashlib.sha256(data).hexdigest()
    document, _ = await state.library.add(tenant, safe_filename(name, fmt), fmt, sha256, data, purpose)
    return document
