"""The embedding model under threads, as the service uses it: queries, token counts and an upload's batches
at once, each getting its own vectors. (The upload benchmark once saw a query fail with "Unable to create
tensor" beside an indexing run; this test did not reproduce that alone, so it guards the results, and the
embedder takes one call at a time.)"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ragserve.ingest.embedding import DenseEmbedder


def test_queries_and_documents_embedded_from_threads_at_once_get_their_own_vectors(
    embedder: DenseEmbedder,
) -> None:
    documents = [[f"Document {d}, paragraph {i}: warehouse robot {d * 100 + i}." for i in range(40)]
                 for d in range(3)]  # fmt: skip
    queries = [f"question {q}: how long does robot {q} run on one charge?" for q in range(60)]
    with ThreadPoolExecutor(6) as pool:
        batches = [pool.submit(embedder.embed_documents, texts) for texts in documents]
        asked = [pool.submit(embedder.embed_query, q) for q in queries]
        counts = [pool.submit(embedder.count_tokens, q * 20) for q in queries[:20]]
        vectors = [b.result() for b in batches]
        answers = [a.result() for a in asked]
        assert all(c.result() > 0 for c in counts)
    for texts, got in zip(documents, vectors, strict=True):
        assert got.shape == (len(texts), embedder.dim)
        alone = DenseEmbedder.embed_documents(embedder, texts[:3])  # the model itself, not the test's memory
        assert np.allclose(got[:3], alone, atol=1e-5)
    assert all(len(a) == embedder.dim for a in answers)
