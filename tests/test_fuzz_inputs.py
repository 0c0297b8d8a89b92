"""Property-based tests: no input, however odd, makes loading or predicting fail with anything but our own error."""

import json

from hypothesis import given
from hypothesis import strategies as st

from training import text
from training.intents import IntentsError, load_intents, parse_intents

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars, lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=30
)
# Documents shaped like intents.json with something wrong anywhere, so the checks deep inside get exercised too.
intent_like = st.fixed_dictionaries(
    {},
    optional={
        "tag": json_scalars,
        "patterns": st.lists(json_scalars | st.text(), max_size=5),
        "responses": st.lists(json_scalars | st.text(), max_size=3),
        "extra": json_values,
    },
)
intents_like = st.fixed_dictionaries({"intents": st.lists(intent_like | json_values, max_size=5)})
odd_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",)), max_size=200
) | st.sampled_from(["", " ", "\n\t", "😀" * 50, "\x00\x01\x1b[31m", "A" * 100_000, "a b " * 25_000, "İ" * 10])


@given(json_values | intents_like)
def test_any_json_document_loads_or_raises_our_error(document):
    try:
        intents = parse_intents(document, source="fuzz.json")
    except IntentsError as exc:
        assert str(exc).startswith("fuzz.json")
    else:
        assert intents.intents and all(i.patterns and i.responses for i in intents.intents)


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
