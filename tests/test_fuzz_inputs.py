"""Property-based tests: no input, however odd, makes loading or predicting fail with anything but our own error."""

import json
import unicodedata

from hypothesis import event, given
from hypothesis import strategies as st

from training import text
from training.intents import KINDS, IntentsError
from training.intents_reader import load_intents, parse_intents

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars, lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=30
)
# Documents shaped like intents.json with something wrong anywhere, so the checks deep inside get exercised too.
texts = st.text(max_size=30) | st.sampled_from(["hi", "hello there", "?!", "  ", "ভালো", "Tiê\u0301ng"])


def _intent_with_keys(keys: tuple[str, str, str], tags: st.SearchStrategy) -> st.SearchStrategy:
    tag, patterns, responses = keys
    return st.fixed_dictionaries(
        {tag: tags},
        optional={
            patterns: st.lists(texts | json_scalars, max_size=5) | texts,
            responses: st.lists(texts | json_scalars, max_size=3) | texts,
            "context_set": json_values,
        },
    )


# intent objects with the key spellings real files use (Tag, Patterns, response, ...); `intent_like` may have a bad
# tag, which refuses the file, `repairable_intent` always has a usable one, so the repairs get exercised
spellings = st.tuples(
    st.sampled_from(["tag", "Tag", "TAG"]),
    st.sampled_from(["patterns", "Patterns", "pattern"]),
    st.sampled_from(["responses", "Responses", "response"]),
)
usable_tags = st.sampled_from(["a", "b", "c d?", " ভালো ", "a"]) | st.text(min_size=1).filter(str.strip)
intent_like = spellings.flatmap(lambda keys: _intent_with_keys(keys, usable_tags | json_scalars))
repairable_intent = spellings.flatmap(lambda keys: _intent_with_keys(keys, usable_tags))
repairable_files = st.lists(repairable_intent, min_size=2, max_size=8)
intents_like = st.fixed_dictionaries({"intents": st.lists(intent_like | json_values, max_size=6)}) | st.lists(
    intent_like, max_size=6
)
odd_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",)), max_size=200
) | st.sampled_from(["", " ", "\n\t", "😀" * 50, "\x00\x01\x1b[31m", "A" * 100_000, "a b " * 25_000, "İ" * 10])


@given(json_values | intents_like | repairable_files)
def test_any_json_document_loads_or_raises_our_error(document):
    try:
        intents = parse_intents(document, source="fuzz.json")
    except IntentsError as exc:
        assert str(exc).startswith("fuzz.json")
        event("refused")
    else:  # what every loaded file guarantees, however it was written
        event("loaded")
        assert len(intents.tags) >= 2 and len(set(i.tag for i in intents.intents)) == len(intents.intents)
        for intent in intents.intents:
            assert isinstance(intent.tag, str) and intent.tag.strip()
            for t in intent.patterns + intent.responses:
                assert isinstance(t, str) and t.strip() and unicodedata.is_normalized("NFC", t)
                t.encode("utf-8")  # no lone surrogate: every text can be written out
            assert all(text.tokenize(p) for p in intent.patterns)
        assert {f.kind for f in intents.findings} <= set(KINDS)
        assert len(intents.grouped_findings()) <= len(KINDS)


@given(st.binary(max_size=300) | odd_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_file_bytes_load_or_raise_our_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "intents.json"
    path.write_bytes(raw)
    try:
        load_intents(path)
    except IntentsError as exc:
        assert str(exc).startswith(str(path))


def test_huge_and_deep_documents_are_our_error(tmp_path):
    for content in ["[" * 50_000, '{"intents": ' * 5_000, "1" * 10_000]:
        path = tmp_path / "intents.json"
        path.write_text(content)
        try:
            load_intents(path)
        except IntentsError:
            continue
        raise AssertionError(f"{content[:20]!r} loaded")


@given(odd_text)
def test_any_text_gives_a_valid_vector(message):
    index = text.index_vocabulary(text.build_vocabulary([text.features("hello card arrived"), text.features("a 1")]))
    ids = text.encode(message, index)
    assert len(ids) == len(set(ids)) and all(0 <= i < len(index) for i in ids)
    vector = text.bag_of_words(message, index)
    assert vector.shape == (len(index),) and set(vector.tolist()) <= {0.0, 1.0}


@given(odd_text)
def test_any_text_gives_a_valid_prediction(classifier, message):
    answer = classifier.predict(message)
    assert answer.intent in classifier.tags
    assert 0.0 <= answer.confidence <= 1.0
    assert isinstance(answer.fallback, bool) and isinstance(answer.response, str) and answer.response
    assert len(answer.alternatives) == 3
    json.dumps(answer.to_dict())
