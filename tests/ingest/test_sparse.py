from ragserve.ingest.sparse import Bm25Encoder


def test_terms_are_lowercased_stemmed_and_stopwords_dropped() -> None:
    assert Bm25Encoder().terms("The Robots are charging quickly") == ["robot", "charg", "quick"]


def test_document_weights_saturate_with_term_frequency() -> None:
    enc = Bm25Encoder()
    once = enc.encode_document("battery " + "filler " * 20)
    many = enc.encode_document("battery " * 10 + "filler " * 11)
    [battery_id] = enc.encode_query("battery").indices
    w_once = once.values[once.indices.index(battery_id)]
    w_many = many.values[many.indices.index(battery_id)]
    assert w_once < w_many < enc.k1 + 1


def test_query_terms_count_once_each_so_qdrant_idf_does_the_weighting() -> None:
    q = Bm25Encoder().encode_query("refund refund policy")
    assert q.values == [1.0, 1.0]
    assert q.indices == sorted(q.indices)


def test_a_query_of_stopwords_has_no_terms() -> None:
    assert Bm25Encoder().encode_query("what is it").indices == []
