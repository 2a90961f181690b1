"""Interventions on the real Lite0: ablation agrees with attribution where attribution is exact,
and beats random channels where it is not; edits at derived layers and of neuron groups change
exactly what they say."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import neuronscope as ns
from neuronscope.attribution import default_layer
from neuronscope.cli import main
from neuronscope.errors import NeuronscopeError
from neuronscope.interventions import edited_forward


def test_at_the_head_ablating_channels_drops_the_logit_by_exactly_their_attribution(lite0):
    # after the head, pooling and a linear classifier: zeroing channels removes their attribution
    config = ns.AblationCheckConfig(ks=(1, 8), trials=4)
    for row in ns.ablation_check(lite0, "chelsea", [default_layer(lite0)], config):
        assert row.target == "tiger cat"
        assert row.top_drop == pytest.approx(row.predicted, rel=1e-3, abs=1e-3)
        assert row.top_drop > row.random_drop_max


def test_deeper_down_the_most_attributed_channels_matter_more_than_random_ones(lite0):
    rows = ns.ablation_check(lite0, "coffee", ["blocks.4.2", "blocks.5.3"], ns.AblationCheckConfig(ks=(4,), trials=16))
    for row in rows:
        assert row.top_drop > 2 * row.random_drop > 0, row
        assert row.top_probability_drop > row.random_probability_drop, row


def test_the_prediction_moves_with_the_edit_and_not_without_one(lite0):
    nothing = ns.intervene(lite0, "chelsea", ns.Steer("blocks.5.3:17", 0.0))
    assert np.allclose(nothing.before, nothing.after, atol=1e-6)
    assert nothing.units()[0].unit.startswith("blocks.6.0:")  # the next shown layer by default
    # blanking the whole last block where the cat is (the left half of the grid) removes most of the cat
    blanked = ns.intervene(lite0, "chelsea", ns.Ablate("blocks.5.3", region=(0, 0, 4, 7)))
    cats = [c for c in blanked.classes(3)]
    assert sum(c.after for c in cats) < sum(c.before for c in cats) - 0.05
    assert blanked.classes(1)[0].label == "tiger cat"


def test_ablating_every_random_direction_in_a_region_is_ablating_the_layer_there(lite0):
    rotated = ns.with_random_directions(lite0, "blocks.4.2")
    box = (3, 2, 9, 8)
    direct = ns.intervene(rotated, "chelsea", ns.Ablate("blocks.4.2", region=box), downstream=["blocks.5.0"])
    through = ns.intervene(rotated, "chelsea", ns.Ablate("blocks.4.2.random", region=box), downstream=["blocks.5.0"])
    assert np.allclose(direct.after, through.after, atol=1e-5)
    assert not np.allclose(direct.before, direct.after, atol=1e-3)


def test_a_removed_neuron_group_and_a_mean_ablation_leave_exactly_what_they_say(lite0, tmp_path):
    groups = ns.neuron_groups(lite0, "chelsea", "blocks.4.2", k=3)
    inputs = lite0.input("chelsea")
    edits = list(ns.ScaleGroup(groups, 1).resolve(lite0))
    values = edited_forward(lite0, inputs, [edits], ["blocks.4.2"])["blocks.4.2"]
    part = np.einsum("hw,c->chw", groups.maps[1], groups.directions[1])
    assert np.allclose((values[0] - values[1]).numpy(), part, atol=1e-4)
    means = ns.ActivationMeans({"blocks.4.2": torch.full((112, 14, 14), 0.5)}, 1, "test")
    edits = list(ns.Ablate(["blocks.4.2:7", "blocks.4.2:9@3,4"], means=means).resolve(lite0))
    values = edited_forward(lite0, inputs, [edits], ["blocks.4.2"])["blocks.4.2"]
    changed = (values[0] != values[1]).nonzero().tolist()
    assert all(c == 7 or (c, y, x) == (9, 4, 3) for c, y, x in changed) and len(changed) == 14 * 14 + 1
    assert torch.all(values[1, 7] == 0.5)


def test_mean_activations_are_the_mean_over_the_source(lite0):
    means = ns.mean_activations(lite0, "photos", ["blocks.5.3"], ns.PassConfig(progress=False, batch=64))
    assert means.of("blocks.5.3").shape == (192, 7, 7) and means.images > 100
    with pytest.raises(NeuronscopeError, match="no mean of layer 'blocks.4.2'"):
        means.of("blocks.4.2")


def test_bad_edits_get_clear_errors(lite0):
    with pytest.raises(NeuronscopeError, match="did you mean"):
        ns.intervene(lite0, "chelsea", ns.Ablate("blocks.4.x:3"))
    with pytest.raises(NeuronscopeError, match="is a class"):
        ns.intervene(lite0, "chelsea", ns.Ablate("logits:tabby"))
    with pytest.raises(NeuronscopeError, match="whole layer"):
        ns.intervene(lite0, "chelsea", ns.Steer("blocks.4.2", 1.0))
    with pytest.raises(NeuronscopeError, match="inside the 14x14 grid"):
        ns.intervene(lite0, "chelsea", ns.Ablate("blocks.4.2", region=(0, 0, 20, 3)))
    with pytest.raises(NeuronscopeError, match="at least one edit"):
        ns.intervene(lite0, "chelsea", [])
    with pytest.raises(NeuronscopeError, match="is not an edit"):
        ns.intervene(lite0, "chelsea", ["blocks.4.2:3"])


def test_the_ablate_command_prints_the_class_changes_and_writes_them(zoo_loaded_once, tmp_path, capsys):
    out = tmp_path / "ablation.json"
    assert main(["ablate", "chelsea", "blocks.5.3", "--region", "0,0,4,7", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tiger cat" in printed and "units of blocks.6.0 that changed most" in printed
    written = json.loads(out.read_text())
    assert written["kind"] == "intervention" and written["classes"][0]["after"] < written["classes"][0]["before"]
    assert main(["ablate", "chelsea", "blocks.5.3:3", "--steer", "2", "--region", "0,0,1,1"]) == 2
    assert "does not take --mean-over or --region" in capsys.readouterr().err
    assert main(["ablate", "chelsea", "blocks.5.3", "--region", "0,0,4"]) == 2
    assert "four integers" in capsys.readouterr().err


@pytest.mark.parametrize("spec, units", [
    ("efficientnet_lite0", ["blocks.5.3:3", "blocks.2.1:1@1,1"]),
    (f"{Path(__file__).parent / 'user_models' / 'plumbing.py'}:vit", ["blocks.2:5", "blocks.1:1@1,1"]),  # plumbing only
])
def test_rows_made_at_the_first_edit_equal_the_whole_batch_run_from_the_input(spec, units, lite0):
    from neuronscope.capture import capture
    from neuronscope.names import LOGITS

    model = lite0 if spec == "efficientnet_lite0" else ns.load(spec, device="cpu")
    x = model.input("chelsea")
    edits = [edit for unit in units for edit in ns.Ablate(unit).resolve(model)]
    fast = edited_forward(model, x, [edits])[LOGITS]

    def edit_second_row(layer):
        def replace(values):
            out = values.clone()
            for edit in edits:
                if edit.layer == layer:
                    out[1:] = edit.apply(out[1:])
            return out
        return replace

    layers = sorted({edit.layer for edit in edits})
    with torch.no_grad(), capture(model, [LOGITS, *layers], replace={layer: edit_second_row(layer) for layer in layers}) as cap:
        slow = cap(x.expand(2, *x.shape[1:]))[LOGITS]
    assert torch.allclose(fast, slow, atol=1e-5) and not torch.allclose(fast[0], fast[1], atol=1e-4)
