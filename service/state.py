"""Everything a request needs, built once in the app's lifespan and reached through FastAPI dependencies."""

from dataclasses import dataclass

from ragserve.adapters.swap import AdapterSwitch
from ragserve.engine.replica_set import Replicas
from ragserve.errors import ModelNotAllowedError
from ragserve.ingest.runtime import IngestRuntime
from ragserve.ingest.search import Retriever
from ragserve.service.config import ServeConfig
from ragserve.service.feedback.store import FeedbackStore
from ragserve.service.library import DocumentLibrary
from ragserve.service.limits import ConcurrencyLimiter
from ragserve.service.metrics import Metrics
from ragserve.service.prompt import PromptBuilder
from ragserve.service.tenants import TenantDirectory
from ragserve.service.vector_stores import VectorStores
from ragserve.settings import Settings
from ragserve.state.database import Database
from ragserve.state.responses import ResponseStore

__all__ = ["ServiceState"]


@dataclass
class ServiceState:
    config: ServeConfig
    settings: Settings
    database: Database
    tenants: TenantDirectory
    feedback: FeedbackStore
    library: DocumentLibrary
    vector_stores: VectorStores
    responses: ResponseStore
    ingest: IngestRuntime
    retriever: Retriever
    prompts: PromptBuilder
    replicas: Replicas
    base_name: str
    adapters: AdapterSwitch
    metrics: Metrics
    limiter: ConcurrencyLimiter
    metrics_url: str = ""  # where the metrics listener answers, once the app has started

    def models_for(self, tenant: str) -> dict[str, str]:
        """What a tenant may ask for: 'default', the base model, and its own adapter if it has one."""
        version = self.adapters.current(tenant)
        adapter = version.served_name if version else None
        names = {"default": adapter or self.base_name, self.base_name: self.base_name}
        if adapter:
            names[adapter] = adapter
        return names

    def served_model(self, tenant: str, requested: str) -> str:
        allowed = self.models_for(tenant)
        if requested not in allowed:
            raise ModelNotAllowedError(
                f"model {requested!r} does not exist or is not available to this key; "
                f"use one of: {', '.join(sorted(allowed))}"
            )
        return allowed[requested]
