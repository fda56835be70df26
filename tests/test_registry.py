import json

import pytest

import metaenvs
from metaenvs.errors import EntryPointError, InvalidArgumentError, RegistrationError, UnknownIdError
from metaenvs.registration import TaskSpec, parse_id


def test_every_builtin_id_follows_the_grammar():
    for id in metaenvs.registry:
        family, name, version = parse_id(id)
        assert id == f"{family}/{name}-v{version}"


@pytest.mark.parametrize("id", sorted(metaenvs.registry))
def test_spec_round_trips_through_json(id):
    spec = metaenvs.spec(id)
    assert TaskSpec.from_json(spec.to_json()) == spec
    assert json.loads(spec.to_json())["entry_point"] == spec.entry_point


def test_unknown_id_lists_nearest_ids():
    with pytest.raises(UnknownIdError, match="Did you mean: Synthetic/Sinusoid-v0"):
        metaenvs.make("Synthetic/Sinusiod-v0")


def test_unknown_version_lists_existing_versions():
    with pytest.raises(UnknownIdError, match=r"v7 .*Synthetic/Sinusoid-v0"):
        metaenvs.make("Synthetic/Sinusoid-v7")


def test_id_without_version_resolves_to_latest():
    assert metaenvs.spec("Synthetic/Sinusoid").id == "Synthetic/Sinusoid-v0"


@pytest.mark.parametrize("bad", ["Sinusoid-v0", "Synthetic/", "a b/c-v0", 3])
def test_malformed_id_is_refused(bad):
    with pytest.raises(RegistrationError, match="Family/Name-vN"):
        metaenvs.spec(bad)


def test_duplicate_registration_is_refused(scratch_registry):
    with pytest.raises(RegistrationError, match=r"already registered.*Synthetic/Sinusoid-v1"):
        metaenvs.register("Synthetic/Sinusoid-v0", "metaenvs.synthetic.sinusoid:SinusoidRegression")


def test_register_requires_a_version(scratch_registry):
    with pytest.raises(RegistrationError, match="no version"):
        metaenvs.register("Mine/Thing", "metaenvs.synthetic.sinusoid:SinusoidRegression")


def test_entry_point_must_be_a_string(scratch_registry):
    with pytest.raises(EntryPointError, match="module:Attr"):
        metaenvs.register("Mine/Thing-v0", lambda: None)


def test_missing_module_is_named(scratch_registry):
    metaenvs.register("Mine/NoModule-v0", "not_a_module.sub:Thing")
    with pytest.raises(EntryPointError, match=r"module 'not_a_module\.sub' cannot be imported"):
        metaenvs.make("Mine/NoModule-v0")


def test_missing_attribute_is_named(scratch_registry):
    metaenvs.register("Mine/NoAttr-v0", "metaenvs.synthetic.sinusoid:Nope")
    with pytest.raises(EntryPointError, match=r"has no attribute 'Nope'.*SinusoidRegression"):
        metaenvs.make("Mine/NoAttr-v0")


def test_unknown_kwarg_lists_accepted_ones():
    with pytest.raises(InvalidArgumentError, match=r"does not accept 'shot'.*Accepted.*shots"):
        metaenvs.make("Synthetic/Sinusoid-v0", shot=5)


def test_bad_kwarg_value_is_refused():
    with pytest.raises(InvalidArgumentError, match="shots must be a positive int, got 0"):
        metaenvs.make("Synthetic/Sinusoid-v0", shots=0)


def test_kwargs_override_and_are_recorded_in_spec():
    dist = metaenvs.make("Synthetic/Sinusoid-v0", shots=5)
    assert dist.spec.kwargs["shots"] == 5
    assert dist.tasks("test")[0].load().x_train.shape == (5, 1)


def test_user_registration_round_trip(scratch_registry):
    spec = metaenvs.register(
        "Mine/Sine-v0",
        "metaenvs.synthetic.sinusoid:SinusoidRegression",
        kwargs={"shots": 4},
        description="mine",
    )
    del metaenvs.registry["Mine/Sine-v0"]
    metaenvs.register_spec(TaskSpec.from_json(spec.to_json()))
    assert metaenvs.make("Mine/Sine-v0").shots == 4


def test_non_json_kwargs_are_refused(scratch_registry):
    with pytest.raises(RegistrationError, match="JSON"):
        metaenvs.register("Mine/Bad-v0", "a:b", kwargs={"x": object()})


def test_pprint_registry_groups_by_family():
    text = metaenvs.pprint_registry(print_output=False)
    assert "===== Synthetic =====" in text and "Synthetic/Sinusoid-v0" in text
    only = metaenvs.pprint_registry(family="Control", print_output=False)
    assert "Sinusoid" not in only
    with pytest.raises(InvalidArgumentError, match="Families"):
        metaenvs.pprint_registry(family="Nope", print_output=False)


def test_negative_seed_is_refused():
    with pytest.raises(InvalidArgumentError, match="seed"):
        metaenvs.make("Synthetic/Sinusoid-v0", seed=-1)
