"""Stand-ins for a Qdrant server, for unit tests of the requests ragserve builds: no Qdrant server can run on
these machines.

`FakeCluster` answers as a custom-sharded Qdrant cluster does by Qdrant's tiered-multitenancy guide. It keeps
each shard key's points (payloads only: no vectors, no scoring) and routes a ShardKeyWithFallback to its
target once that shard key exists with every replica Active, else to the fallback; a plain key to that key;
a read with no key to every shard. A replicate_points transfer ends after a set number of cluster-info polls:
it copies the matching points and makes the target's replicas Active (or Dead, when told to fail). Writes made
while it runs reach both shards, as Qdrant forwards them. Every call is recorded.

`RecordingClient` records the calls made to a real embedded client and passes them on.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http import models as rest

__all__ = ["Call", "FakeCluster", "RecordingClient"]

_AUTO = ""  # the one shard of an auto-sharded collection, as far as routing goes
ACTIVE, PARTIAL, DEAD = qm.ReplicaState.ACTIVE, qm.ReplicaState.PARTIAL, qm.ReplicaState.DEAD


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class _Transfer:
    source: str
    target: str
    flt: qm.Filter | None
    polls_left: int


@dataclass
class _Collection:
    params: dict[str, Any]
    metadata: dict[str, Any]
    shards: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # key -> id -> payload
    states: dict[str, list[qm.ReplicaState]] = field(default_factory=dict)  # key -> one state a replica
    transfer: _Transfer | None = None

    @property
    def custom(self) -> bool:
        return bool(self.params.get("sharding_method") == qm.ShardingMethod.CUSTOM)


class FakeCluster:
    """A custom-sharded Qdrant cluster's answers, kept in memory."""

    def __init__(self, transfer_polls: int = 2, fail_transfer: bool = False) -> None:
        self.calls: list[Call] = []
        self.collections: dict[str, _Collection] = {}
        self.aliases: dict[str, str] = {}
        self.transfer_polls = transfer_polls
        self.fail_transfer = fail_transfer
        self.after_call: Callable[[Call], None] | None = None

    def as_client(self) -> QdrantClient:
        return cast(QdrantClient, self)

    def names(self) -> list[str]:
        return [call.name for call in self.calls]

    def routed(self, collection: str, tenant: str, fallback: str) -> set[str]:
        """The ids a tenant's read with its shard key and the fallback finds now (nothing recorded)."""
        selector = qm.ShardKeyWithFallback(target=tenant, fallback=fallback)
        return set(self._find(collection, _tenant(tenant), selector, write=False))

    def _record(self, name: str, *args: Any, **kwargs: Any) -> None:
        call = Call(name, args, kwargs)
        self.calls.append(call)
        if self.after_call is not None:
            self.after_call(call)

    # Collections and aliases.

    def get_collections(self) -> qm.CollectionsResponse:
        return qm.CollectionsResponse(
            collections=[qm.CollectionDescription(name=n) for n in self.collections]
        )

    def collection_exists(self, name: str) -> bool:
        return name in self.collections

    def get_aliases(self) -> qm.CollectionsAliasesResponse:
        aliases = [qm.AliasDescription(alias_name=a, collection_name=c) for a, c in self.aliases.items()]
        return qm.CollectionsAliasesResponse(aliases=aliases)

    def update_collection_aliases(self, change_aliases_operations: Sequence[Any]) -> None:
        self._record("update_collection_aliases", change_aliases_operations)
        for op in change_aliases_operations:
            if isinstance(op, qm.CreateAliasOperation):
                self.aliases[op.create_alias.alias_name] = op.create_alias.collection_name
            elif isinstance(op, qm.DeleteAliasOperation):
                self.aliases.pop(op.delete_alias.alias_name, None)

    def create_collection(self, name: str, metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._record("create_collection", name, metadata=metadata, **kwargs)
        coll = _Collection(kwargs, dict(metadata or {}))
        if not coll.custom:
            coll.shards[_AUTO], coll.states[_AUTO] = {}, [ACTIVE]
        self.collections[name] = coll

    def delete_collection(self, name: str) -> None:
        self._record("delete_collection", name)
        del self.collections[name]

    def get_collection(self, name: str) -> Any:
        coll = self._coll(name)
        params = SimpleNamespace(sharding_method=coll.params.get("sharding_method"))
        return SimpleNamespace(config=SimpleNamespace(params=params, metadata=dict(coll.metadata)))

    def update_collection(self, name: str, metadata: dict[str, Any]) -> None:
        self._record("update_collection", name, metadata=metadata)
        self._coll(name).metadata.update(metadata)

    def create_payload_index(self, collection: str, field_name: str, schema: Any, wait: bool) -> None:
        self._record("create_payload_index", collection, field_name, schema, wait=wait)

    def facet(self, collection: str, key: str, limit: int, exact: bool) -> Any:
        values = {p[key] for shard in self._coll(collection).shards.values() for p in shard.values()}
        return SimpleNamespace(hits=[SimpleNamespace(value=v) for v in sorted(values)])

    # Shard keys and cluster operations.

    def create_shard_key(self, collection: str, shard_key: str, **kwargs: Any) -> bool:
        self._record("create_shard_key", collection, shard_key, **kwargs)
        coll = self._coll(collection)
        if not coll.custom:
            raise ValueError("shard keys need a collection with custom sharding")
        if shard_key in coll.shards:
            raise ValueError(f"shard key {shard_key} already exists")
        replicas = kwargs.get("replication_factor") or coll.params.get("replication_factor") or 1
        coll.shards[shard_key] = {}
        coll.states[shard_key] = [kwargs.get("initial_state") or ACTIVE] * replicas
        return True

    def delete_shard_key(self, collection: str, shard_key: str) -> bool:
        self._record("delete_shard_key", collection, shard_key)
        coll = self._coll(collection)
        del coll.shards[shard_key], coll.states[shard_key]
        return True

    def list_shard_keys(self, collection: str) -> qm.ShardKeysResponse:
        keys = [qm.ShardKeyDescription(key=k) for k in self._coll(collection).shards if k != _AUTO]
        return qm.ShardKeysResponse(shard_keys=keys)

    def cluster_collection_update(self, collection: str, cluster_operation: Any) -> bool:
        self._record("cluster_collection_update", collection, cluster_operation)
        op = cluster_operation.replicate_points
        coll = self._coll(collection)
        coll.transfer = _Transfer(
            str(op.from_shard_key), str(op.to_shard_key), op.filter, self.transfer_polls
        )
        return True

    def collection_cluster_info(self, collection: str) -> qm.CollectionClusterInfo:
        self._record("collection_cluster_info", collection)
        coll = self._coll(collection)
        self._advance(coll)
        local, remote = [], []
        for shard_id, (key, states) in enumerate(coll.states.items()):
            key_or_none = key if coll.custom else None
            points = len(coll.shards[key])
            local.append(
                qm.LocalShardInfo(
                    shard_id=shard_id, shard_key=key_or_none, points_count=points, state=states[0]
                )
            )
            remote += [
                qm.RemoteShardInfo(shard_id=shard_id, shard_key=key_or_none, peer_id=peer, state=state)
                for peer, state in enumerate(states[1:], start=2)
            ]
        transfers = [qm.ShardTransferInfo.model_validate({"shard_id": 0, "from": 1, "to": 2, "sync": True})]
        return qm.CollectionClusterInfo(
            peer_id=1,
            shard_count=len(coll.states),
            local_shards=local,
            remote_shards=remote,
            shard_transfers=transfers if coll.transfer else [],
        )

    def _advance(self, coll: _Collection) -> None:
        transfer = coll.transfer
        if transfer is None:
            return
        if transfer.polls_left > 0:
            transfer.polls_left -= 1
            return
        coll.transfer = None
        replicas = len(coll.states[transfer.target])
        if self.fail_transfer:
            coll.states[transfer.target] = [DEAD] * replicas
            return
        source = coll.shards[transfer.source]
        coll.shards[transfer.target].update({i: p for i, p in source.items() if _matches(p, transfer.flt)})
        coll.states[transfer.target] = [ACTIVE] * replicas

    # Points.

    def upsert(self, collection: str, points: list[qm.PointStruct], **kwargs: Any) -> None:
        self._record("upsert", collection, points, **kwargs)
        coll = self._coll(collection)
        for key in self._route(coll, kwargs.get("shard_key_selector"), write=True):
            coll.shards[key].update({str(p.id): dict(p.payload or {}) for p in points})

    def delete(self, collection: str, points_selector: qm.FilterSelector, **kwargs: Any) -> None:
        self._record("delete", collection, points_selector=points_selector, **kwargs)
        coll = self._coll(collection)
        for key in self._route(coll, kwargs.get("shard_key_selector"), write=True):
            shard = coll.shards[key]
            for point_id in [i for i, p in shard.items() if _matches(p, points_selector.filter)]:
                del shard[point_id]

    def count(self, collection: str, count_filter: qm.Filter | None = None, **kwargs: Any) -> qm.CountResult:
        self._record("count", collection, count_filter=count_filter, **kwargs)
        found = self._find(collection, count_filter, kwargs.get("shard_key_selector"), write=False)
        return qm.CountResult(count=len(found))

    def scroll(
        self, collection: str, scroll_filter: qm.Filter, **kwargs: Any
    ) -> tuple[list[qm.Record], None]:
        self._record("scroll", collection, scroll_filter=scroll_filter, **kwargs)
        found = self._find(collection, scroll_filter, kwargs.get("shard_key_selector"), write=False)
        return [qm.Record(id=i, payload=p) for i, p in found.items()], None

    def query_points(self, collection: str, **kwargs: Any) -> rest.QueryResponse:
        self._record("query_points", collection, **kwargs)
        found = self._find(
            collection, kwargs.get("query_filter"), kwargs.get("shard_key_selector"), write=False
        )
        points = [qm.ScoredPoint(id=i, version=0, score=0.0, payload=p) for i, p in found.items()]
        return rest.QueryResponse(points=points[: kwargs.get("limit", 10)])

    def close(self) -> None:
        pass

    def _find(
        self, collection: str, flt: qm.Filter | None, selector: Any, write: bool
    ) -> dict[str, dict[str, Any]]:
        coll = self._coll(collection)
        found: dict[str, dict[str, Any]] = {}
        for key in self._route(coll, selector, write):
            found.update({i: p for i, p in coll.shards[key].items() if _matches(p, flt)})
        return found

    def _route(self, coll: _Collection, selector: Any, write: bool) -> list[str]:
        if selector is None:
            if write and coll.custom:
                raise ValueError("a write to a collection with custom sharding needs a shard key")
            return list(coll.shards)
        if not coll.custom:
            raise ValueError("shard keys need a collection with custom sharding")
        if isinstance(selector, qm.ShardKeyWithFallback):
            target = str(selector.target)
            if target in coll.states and all(s == ACTIVE for s in coll.states[target]):
                return [target]
            keys = [str(selector.fallback)]
            if write and coll.transfer is not None and coll.transfer.target == target:
                keys.append(target)  # forwarded to the shard being filled
            return keys
        keys = [str(k) for k in (selector if isinstance(selector, list) else [selector])]
        missing = [k for k in keys if k not in coll.shards]
        if missing:
            raise ValueError(f"no shard key {missing}")
        return keys

    def _coll(self, name: str) -> _Collection:
        return self.collections[self.aliases.get(name, name)]


def _tenant(tenant: str) -> qm.Filter:
    return qm.Filter(must=[qm.FieldCondition(key="tenant", match=qm.MatchValue(value=tenant))])


def _matches(payload: dict[str, Any], flt: qm.Filter | None) -> bool:
    """The conditions ragserve sends: `must` field conditions: a value, any of some values, a lower bound."""
    if flt is None:
        return True
    must = flt.must if isinstance(flt.must, list) else [flt.must] if flt.must else []
    for cond in must:
        assert isinstance(cond, qm.FieldCondition), cond
        value = payload.get(cond.key)
        if isinstance(cond.match, qm.MatchValue) and value != cond.match.value:
            return False
        if isinstance(cond.match, qm.MatchAny) and value not in cast(list[Any], cond.match.any):
            return False
        if cond.range is not None and not (value is not None and value >= cast(qm.Range, cond.range).gte):
            return False
    return True


class RecordingClient:
    """A real client, with every call recorded (name and keyword arguments) before it is passed on."""

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self.calls: list[Call] = []

    def as_client(self) -> QdrantClient:
        return cast(QdrantClient, self)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method):
            return method

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(Call(name, args, kwargs))
            return method(*args, **kwargs)

        return recorded
