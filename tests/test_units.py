"""Unit addresses: one parser, clear errors."""
import pytest

import neuronscope as ns
from neuronscope import Unit


@pytest.mark.parametrize(
    "address, expected",
    [
        ("blocks.4.2", Unit("blocks.4.2")),
        ("blocks.4.2:17", Unit("blocks.4.2", 17)),
        ("blocks.4.2:17@3,4", Unit("blocks.4.2", 17, (3, 4))),
        (" blocks.4.2.conv_pw:0@13,0 ", Unit("blocks.4.2.conv_pw", 0, (13, 0))),
        ("logits:281", Unit("logits", 281)),
        ("logits:tabby", Unit("logits", 281)),
        ("logits:Egyptian cat", Unit("logits", 285)),
        ("logits:TABBY CAT", Unit("logits", 281)),
    ],
)
def test_parses_every_form(lite0, address, expected):
    unit = ns.parse_unit(lite0, address)
    assert unit == expected
    assert ns.parse_unit(lite0, str(unit)) == unit  # str() round-trips


@pytest.mark.parametrize(
    "address, message",
    [
        ("blokcs.4.2:3", "unknown layer 'blokcs.4.2' .* did you mean 'blocks.4.2', '.*' or '.*'\\?"),
        ("blocks.4.2:112", "channel 112 is out of range for layer 'blocks.4.2': it has channels 0..111"),
        ("blocks.4.2:-1", "out of range .* 0..111"),
        ("blocks.4.2:x", "channel must be a number in 0..111"),
        ("blocks.4.2:3@14,0", "outside the layer's 14x14 grid"),
        ("blocks.4.2:3@1", "position must be '@x,y'"),
        ("logits:3@1,1", "no spatial positions"),
        ("logits:crane", "ambiguous: it names classes 134 \\(crane\\), 517 \\(crane\\)"),
        ("logits:tabbby", "unknown class 'tabbby': did you mean 'tabby'"),
        ("logits:1000", "out of range .* 0..999"),
        ("", "empty unit address"),
    ],
)
def test_bad_addresses_name_the_problem_and_the_choices(lite0, address, message):
    with pytest.raises(ns.NeuronscopeError, match=message):
        ns.parse_unit(lite0, address)
