"""Dictionaries of features (issue 24): learned on Lite0's real activations over the bundled photos,
judged on photos held out of training."""
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import neuronscope as ns
from neuronscope.dictionaries import (
    ActivationVectors,
    Dictionary,
    DictionaryConfig,
    collect_vectors,
    learn_dictionary,
    spliced_agreement,
    split,
    stability,
    vector_quality,
)
from neuronscope.dictionaries.basis import basis_summary, feature_neurons, neuron_features
from neuronscope.dictionaries.features import feature_examples, render_features
from neuronscope.dictionaries.rates import firing_rates
from neuronscope.errors import NeuronscopeError
from neuronscope.stream import PassConfig, Reader, stream

LAYER = "blocks.5.3"  # 7 x 7 x 192: 13k training vectors, seconds to train


@pytest.fixture(scope="module")
def learned(lite0, tmp_path_factory):
    cache = tmp_path_factory.mktemp("dictionaries")
    config = DictionaryConfig(epochs=20, progress=False)
    return learn_dictionary(lite0, ns.data.bundled_source(), LAYER, config, cache_dir=cache), cache, config


def test_photos_held_out_are_whole_photos_and_the_split_is_seeded():
    source = ns.data.bundled_source()
    train, heldout = split(source, 0.2, seed=0)
    assert {k.split("@")[0] for k in train}.isdisjoint({k.split("@")[0] for k in heldout})
    assert len({k.split("@")[0] for k in heldout}) == 2 and len(heldout) == 60 and len(train) == 270
    assert split(source, 0.2, seed=0) == (train, heldout) and split(source, 0.2, seed=1) != (train, heldout)


def test_the_dictionary_explains_held_out_photos_better_than_as_many_principal_components(learned, lite0):
    # Two of the 11 bundled photos are held out; 9 training photos are little data, so the bar is
    # the linear baseline with the same number of active dimensions, not an absolute figure.
    dictionary, _, config = learned
    quality = dictionary.manifest["quality"]
    assert quality["heldout_images"] == 60 and quality["heldout_vectors"] == 60 * 49
    source = ns.data.bundled_source()
    vectors = collect_vectors(lite0, source, LAYER, DictionaryConfig(progress=False))
    heldout = np.isin(vectors.keys, np.array(split(source, 0.2, seed=0)[1], dtype=object))
    train, test = vectors.vectors[~heldout].double(), vectors.vectors[heldout].double()
    mean = train.mean(0)
    components = torch.linalg.svd(train - mean, full_matrices=False).Vh[:dictionary.k]
    pca = 1 - (test - ((test - mean) @ components.T @ components + mean)).pow(2).sum() / (test - test.mean(0)).pow(2).sum()
    assert quality["explained_variance"] > float(pca) + 0.15, (quality, float(pca))
    # k active features, less the few whose refitted value comes out negative
    assert 0.9 * dictionary.k < quality["l0"] <= dictionary.k and quality["dead_fraction"] < 0.2
    # the spliced model keeps more than the layer's mean alone would (every position replaced by it)
    zeros = torch.zeros_like(dictionary.decoder)
    mean_only = Dictionary(LAYER, "topk", 1, dictionary.mean, 1.0, zeros, dictionary.encoder_bias, zeros,
                           torch.zeros_like(dictionary.decoder_bias))
    top1, kl = spliced_agreement(lite0, mean_only, ns.data.subset(source, split(source, 0.2, seed=0)[1]))
    assert quality["top1_agreement"] > top1 + 0.1 and 0 < quality["kl"] < kl / 2, (quality, top1, kl)
    noise = [Dictionary(LAYER, "topk", dictionary.k, dictionary.mean, 1.0, d, dictionary.encoder_bias, d,
                        dictionary.decoder_bias) for d in torch.randn(2, *dictionary.decoder.shape, generator=torch.Generator().manual_seed(0))]
    assert quality["stability"] > stability(*noise) + 0.02, (quality["stability"], stability(*noise))


@pytest.mark.slow
def test_end_to_end_fine_tuning_lowers_the_spliced_kl_on_the_images_it_tunes_on(lite0):
    # the same dictionary trained on vectors, then fine-tuned on its training photos with the layer
    # replaced by its reconstruction: the model keeps more of its class distribution there (on
    # held-out photos, blocks.4.2: KL 0.176 -> 0.136, docs/dictionaries.md)
    source = ns.data.bundled_source(["chelsea", "coffee", "rocket"])
    vectors = collect_vectors(lite0, source, LAYER, DictionaryConfig(progress=False))
    base = DictionaryConfig(epochs=20, holdout=0.0, report=False, progress=False)
    plain = learn_dictionary(lite0, source, LAYER, base, vectors=vectors)
    tuned = learn_dictionary(lite0, source, LAYER, replace(base, finetune_epochs=2), vectors=vectors)
    assert tuned.manifest["finetune_images"] == 90 and plain.manifest["finetune_images"] == 0
    assert not torch.equal(tuned.decoder, plain.decoder) and torch.equal(tuned.mean, plain.mean)
    torch.testing.assert_close(tuned.decoder.norm(dim=1), torch.ones(tuned.features))
    (_, kl_plain), (_, kl_tuned) = (spliced_agreement(lite0, d, source) for d in (plain, tuned))
    assert kl_tuned < 0.95 * kl_plain, (kl_plain, kl_tuned)
    assert tuned.fingerprint != plain.fingerprint and tuned.manifest["settings"]["finetune_epochs"] == 2


def test_the_report_figures_are_what_they_say(learned, lite0):
    dictionary, _, _ = learned
    vectors = collect_vectors(lite0, ns.data.first(ns.data.bundled_source(["rocket"]), 8), LAYER,
                              DictionaryConfig(progress=False))
    variance, l0, dead = vector_quality(dictionary, vectors.vectors)
    x = vectors.vectors.double()
    codes = dictionary.encode(vectors.vectors)
    expected = 1 - (x - dictionary.decode(codes).double()).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    assert variance == pytest.approx(float(expected), abs=1e-6)
    assert l0 == pytest.approx(float((codes != 0).sum(1).double().mean()))
    assert dead == pytest.approx(float(1 - (codes != 0).any(0).double().mean()))
    assert stability(dictionary, dictionary) == pytest.approx(1.0)


def test_pre_activations_are_linear_and_codes_are_the_top_k(learned):
    dictionary, _, config = learned
    a, b = torch.randn(5, dictionary.channels), torch.randn(5, dictionary.channels)
    zero = dictionary.pre_activation(torch.zeros(1, dictionary.channels))
    torch.testing.assert_close(dictionary.pre_activation(a + b) - zero,
                               (dictionary.pre_activation(a) - zero) + (dictionary.pre_activation(b) - zero),
                               atol=1e-4, rtol=1e-4)
    plain = replace(dictionary, refit=False)
    codes = plain.encode(a)
    assert ((codes != 0).sum(1) <= dictionary.k).all()
    kept = dictionary.pre_activation(a).topk(dictionary.k, dim=1).values.clamp_min(0)
    torch.testing.assert_close(codes.sort(1, descending=True).values[:, :dictionary.k], kept)
    torch.testing.assert_close(dictionary.codes_of(dictionary.pre_activation(a)), codes)  # interventions' codes


def test_refitted_codes_keep_the_encoders_features_and_fit_them_by_least_squares(learned, lite0):
    dictionary, _, _ = learned
    assert dictionary.refit  # the default
    plain = replace(dictionary, refit=False)
    source = ns.data.bundled_source()
    vectors = collect_vectors(lite0, source, LAYER, DictionaryConfig(progress=False))
    heldout = vectors.vectors[np.isin(vectors.keys, np.array(split(source, 0.2, seed=0)[1], dtype=object))]
    refitted, encoded = dictionary.encode(heldout), plain.encode(heldout)
    assert (refitted >= 0).all() and not ((refitted != 0) & (encoded == 0)).any()  # a subset of the encoder's choice
    assert (refitted != 0).sum() > 0.97 * (encoded != 0).sum()  # few values come out negative and are dropped
    # least squares on the kept features: the residual is orthogonal to their atoms, up to the ridge
    # (1e-3 x the value) and the rare vector whose second fit drops a feature again
    x = (heldout - dictionary.mean) / dictionary.scale - dictionary.decoder_bias
    residual = x - refitted @ dictionary.decoder
    along = (residual @ dictionary.decoder.T)[refitted != 0]
    orthogonal = along.abs() <= 1.5e-3 * refitted[refitted != 0] + 1e-4
    assert orthogonal.float().mean() > 0.99, orthogonal.float().mean()
    # on photos it was not trained on, the refitted codes explain more of the layer than the encoder's
    (refit_variance, _, _), (plain_variance, _, _) = (vector_quality(d, heldout) for d in (dictionary, plain))
    assert refit_variance > plain_variance + 0.005, (refit_variance, plain_variance)
    assert dictionary.manifest["quality"]["explained_variance"] == pytest.approx(refit_variance, abs=1e-4)


def test_a_layer_output_is_reconstructed_position_by_position(learned, lite0):
    dictionary, _, _ = learned
    x = lite0.prepare(ns.data.photo("chelsea"))
    with torch.no_grad(), ns.capture(lite0, [LAYER]) as cap:
        act = cap(x)[LAYER]
    whole = dictionary.reconstruct(act)
    rows = act.permute(0, 2, 3, 1).reshape(-1, act.shape[1])
    torch.testing.assert_close(whole.permute(0, 2, 3, 1).reshape(-1, act.shape[1]), dictionary.reconstruct(rows))


def test_a_saved_dictionary_is_reused_by_its_fingerprint(learned, lite0):
    dictionary, cache, config = learned
    files = list(cache.glob("dictionary-*.npz"))
    assert len(files) == 1 and dictionary.fingerprint in files[0].name
    again = learn_dictionary(lite0, ns.data.bundled_source(), LAYER, config, cache_dir=cache)
    torch.testing.assert_close(again.decoder, dictionary.decoder)
    assert again.manifest["quality"] == dictionary.manifest["quality"]
    loaded = Dictionary.load(files[0])
    assert (loaded.kind, loaded.k, loaded.layer, loaded.scale, loaded.refit) == (dictionary.kind, dictionary.k, LAYER,
                                                                                  dictionary.scale, True)
    with np.load(files[0]) as data:  # a file written before refitting existed reads as the encoder's codes
        older = {name: data[name] for name in data.files if name != "refit"}
    np.savez(cache / "older.npz", **older)
    assert not Dictionary.load(cache / "older.npz").refit


def test_the_vectors_are_the_layer_at_every_position_or_a_seeded_sample(lite0):
    source = ns.data.first(ns.data.bundled_source(), 5)
    every = ActivationVectors(lite0, LAYER)
    some = ActivationVectors(lite0, LAYER, positions=4, seed=3)
    stream(source, [every, some], PassConfig(batch=2, workers=0, progress=False))
    every, some = every.finish(), some.finish()
    assert len(every) == 5 * 49 and len(some) == 5 * 4 and list(every.keys[:49]) == [source.keys()[0]] * 49
    rows = every.vectors.view(5, 49, -1)
    for i in range(5):
        assert all(any(torch.equal(v, r) for r in rows[i]) for v in some.vectors[4 * i:4 * i + 4])


@pytest.mark.slow
def test_nmf_dictionaries_reconstruct_non_negative_layers_and_refuse_signed_ones(lite0):
    config = DictionaryConfig(kind="nmf", features=24, positions=8, report=False, progress=False)
    relu = "blocks.2.1.act2"
    dictionary = learn_dictionary(lite0, ns.data.bundled_source(), relu, config)
    vectors = collect_vectors(lite0, ns.data.bundled_source(["rocket"]), relu, config).vectors
    variance, l0, _ = vector_quality(dictionary, vectors)
    codes = dictionary.encode(vectors)
    assert dictionary.kind == "nmf" and dictionary.features == 24 and (dictionary.decoder >= 0).all()
    assert (codes >= 0).all() and variance > 0.35, variance  # 24 parts of 240 channels: 0.44 measured
    with pytest.raises(NeuronscopeError, match="NMF needs a non-negative layer"):
        learn_dictionary(lite0, ns.data.bundled_source(), LAYER, config)


def test_bad_settings_get_clear_errors(lite0):
    with pytest.raises(NeuronscopeError, match="choose one of topk, nmf"):
        DictionaryConfig(kind="pca")
    with pytest.raises(NeuronscopeError, match="k must be a positive integer"):
        DictionaryConfig(k=0)
    with pytest.raises(NeuronscopeError, match="did you mean"):
        learn_dictionary(lite0, ns.data.bundled_source(), "blocks.5.33", DictionaryConfig(progress=False))
    with pytest.raises(NeuronscopeError, match="positions per image must be 1..49"):
        ActivationVectors(lite0, LAYER, positions=50)


@pytest.mark.slow
def test_feature_visualizations_beat_every_natural_example_and_examples_peak_where_recorded(learned, lite0):
    dictionary, _, _ = learned
    source = ns.data.bundled_source()
    vectors = collect_vectors(lite0, source, LAYER, DictionaryConfig(progress=False))
    shown = firing_rates(dictionary, vectors.vectors).argsort(descending=True)[:4].tolist()
    examples = feature_examples(lite0, dictionary, vectors, shown, top=3)
    natural = dictionary.pre_activation(vectors.vectors)[:, shown].max(0).values
    rendered = render_features(lite0, dictionary, shown, ns.RenderConfig(steps=128, progress=False))
    with torch.no_grad(), ns.capture(lite0, [LAYER]) as cap:
        made = dictionary.pre_activation(cap(rendered.images)[LAYER])
    for j, feature in enumerate(shown):
        assert made[j, feature].max() > natural[j], (feature, float(made[j, feature].max()), float(natural[j]))
        best = examples.examples[j][0]
        assert best.value == pytest.approx(float(natural[j]), rel=1e-5)
        x = lite0.prepare(source.load(best.key))
        with torch.no_grad(), ns.capture(lite0, [LAYER]) as cap:
            again = dictionary.pre_activation(cap(x)[LAYER])[0, feature]
        assert float(again[best.y, best.x]) == pytest.approx(best.value, rel=1e-3, abs=1e-3)
        assert float(again.max()) == pytest.approx(best.value, rel=1e-3, abs=1e-3)


@pytest.mark.slow
def test_the_features_command_writes_the_dictionary_its_report_and_a_sheet(tmp_path, zoo_loaded_once, capsys):
    from neuronscope.cli.main import main

    out = tmp_path / "features"
    assert main(["features", "efficientnet_lite0", LAYER, "--epochs", "2", "--show", "2", "--steps", "8",
                 "-o", str(out), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    dictionary = Dictionary.load(out / "dictionary.npz")
    assert report["features"] == dictionary.features == DictionaryConfig().expansion * 192 and 0 <= report["dead_fraction"] <= 1
    assert all(rate <= report["dense_above"] for rate in json.loads((out / "features.json").read_text())["firing_rates"])
    manifest = json.loads((out / "features.json").read_text())
    assert len(manifest["shown"]) == 2 and manifest["dictionary"]["fingerprint"] == dictionary.fingerprint
    from PIL import Image
    assert Image.open(out / "features.png").size[0] > 6 * 100
    # the saved dictionary's features are units of every command that loads a model
    unit = f"{LAYER}.features:{manifest['shown'][0]}"
    assert main(["render", "efficientnet_lite0", unit, "--feature-dictionary", str(out / "dictionary.npz"),
                 "--steps", "8", "-o", str(tmp_path / "render"), "--no-progress"]) == 0
    rendered = json.loads(next((tmp_path / "render").glob("*.json")).read_text())
    assert rendered["derived_layers"][f"{LAYER}.features"]["fingerprint"] == dictionary.fingerprint
    capsys.readouterr()
    assert main(["render", "efficientnet_lite0", f"{LAYER}.feature:1", "--feature-dictionary", str(out / "dictionary.npz"),
                 "-o", str(tmp_path / "bad")]) == 2
    error = capsys.readouterr().err
    assert "did you mean" in error and f"'{LAYER}.features'" in error


def test_a_feature_is_a_unit_of_the_model_with_its_dictionary(learned, lite0):
    dictionary, _, _ = learned
    featured = ns.with_features(lite0, dictionary)
    name = f"{LAYER}.features"
    names = [info.name for info in featured.layers]
    assert names[names.index(LAYER) + 1] == name and name not in [info.name for info in lite0.layers]
    assert (featured.layer(name).channels, featured.layer(name).spatial) == (dictionary.features, (7, 7))
    assert str(ns.parse_unit(featured, f"{name}:17@3,4")) == f"{name}:17@3,4"
    with pytest.raises(NeuronscopeError, match=f"channels 0..{dictionary.features - 1}"):
        ns.parse_unit(featured, f"{name}:{dictionary.features}")
    with pytest.raises(NeuronscopeError, match="did you mean.*features"):
        ns.parse_unit(featured, f"{LAYER}.featurs:1")
    with pytest.raises(NeuronscopeError, match="unknown layer"):
        ns.parse_unit(lite0, f"{name}:1")  # the plain model has no features
    x = lite0.prepare(ns.data.photo("chelsea"))
    with torch.no_grad(), ns.capture(lite0, [LAYER, "logits"]) as cap:
        plain = cap(x)
    with torch.no_grad(), ns.capture(featured, [name, "logits"]) as cap:
        values = cap(x)
    torch.testing.assert_close(values[name], dictionary.pre_activation(plain[LAYER]))
    torch.testing.assert_close(values["logits"], plain["logits"])  # reading features changes nothing
    # an edit of the features is written into the layer as the change of its reconstruction from
    # the encoder's codes (never refitted): switching every feature off leaves the layer that
    # reconstruction's error plus the offset
    with torch.no_grad(), ns.capture(featured, [name, LAYER, "logits"], replace={name: lambda v: v * 0 - 1}) as cap:
        edited = cap(x)
    offset = dictionary.decode(torch.zeros(1, dictionary.features)).view(1, -1, 1, 1)
    encoder_reconstruction = replace(dictionary, refit=False).reconstruct(plain[LAYER])
    torch.testing.assert_close(edited[LAYER], plain[LAYER] - encoder_reconstruction + offset, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(edited["logits"], plain["logits"], atol=1e-2)
    assert featured.variant and lite0.variant == "" and featured.variant in Reader.of(featured).key


@pytest.mark.slow
def test_feature_addresses_render_and_find_examples_like_channels(learned, lite0):
    dictionary, _, _ = learned
    featured = ns.with_features(lite0, dictionary)
    name = f"{LAYER}.features"
    source = ns.data.bundled_source()
    vectors = collect_vectors(lite0, source, LAYER, DictionaryConfig(progress=False))
    feature = int(firing_rates(dictionary, vectors.vectors).argmax())
    examples = ns.dataset_examples(featured, source, [name], ns.ExamplesConfig(k=3, progress=False))[name]
    natural = float(dictionary.pre_activation(vectors.vectors)[:, feature].max())
    best = examples.top(feature)[0]
    assert best.value == pytest.approx(natural, rel=1e-3)  # the examples pass read the feature's maximum
    rendered = ns.render_units(featured, [f"{name}:{feature}"], ns.RenderConfig(steps=128, progress=False))
    with torch.no_grad(), ns.capture(featured, [name]) as cap:
        made = cap(rendered.images)[name][0, feature]
    assert float(made.max()) > natural
    assert rendered.manifest["derived_layers"][name]["fingerprint"] == dictionary.fingerprint
    assert rendered.manifest["derived_layers"][name]["file"] == dictionary.manifest["file"]  # a replay loads it
    again = ns.read_manifest(rendered.manifest)
    assert [str(u) for u in again.units] == [f"{name}:{feature}"]


def test_neurons_and_features_are_listed_each_by_the_other():
    # three channels; feature 0 is channel 2 alone, feature 1 spreads evenly over channels 0 and 1,
    # feature 2 leans on channel 0; feature 3 never fires
    decoder = torch.tensor([[0.0, 0.0, 1.0], [0.6, 0.6, 0.0], [0.8, -0.6, 0.0], [0.0, 1.0, 0.0]])
    decoder = decoder / decoder.norm(dim=1, keepdim=True)
    dictionary = Dictionary(LAYER, "topk", 1, torch.zeros(3), 1.0, decoder.clone(), torch.zeros(4), decoder, torch.zeros(3))
    rates = torch.tensor([0.5, 0.2, 0.2, 0.0])
    assert feature_neurons(dictionary, 0, top=1) == [(2, pytest.approx(1.0))]
    assert [c for c, _ in feature_neurons(dictionary, 2)] == [0, 1, 2]
    assert feature_neurons(dictionary, 2)[1][1] == pytest.approx(-0.6)
    assert [f for f, _ in neuron_features(dictionary, 1, rates=rates)] == [1, 2]  # feature 3 never fires
    assert [f for f, _ in neuron_features(dictionary, 1)][0] == 3
    summary = basis_summary(dictionary, rates)
    torch.testing.assert_close(summary.neurons_per_feature[:2], torch.tensor([1.0, 2.0]))
    assert summary.features_per_neuron[2] == pytest.approx(1.0)  # only feature 0 uses channel 2
    assert 1.0 < float(summary.features_per_neuron[0]) < 2.0
    with pytest.raises(NeuronscopeError, match="features 0..3"):
        feature_neurons(dictionary, 4)


def test_expanded_weights_reach_a_feature_through_its_direction(learned, lite0):
    # a feature's pre-activation is linear in its layer, so its expanded weights from the layer
    # below are its direction's weights applied to those of the layer's channels
    dictionary, _, _ = learned
    featured = ns.with_features(lite0, dictionary)
    to_channels = ns.expanded_weights(lite0, LAYER, "blocks.5.2")
    window = to_channels.weights.shape[0]
    to_feature = ns.expanded_weights(featured, f"{LAYER}.features:17", "blocks.5.2", window=window)
    weights, _ = dictionary.linear()
    expected = to_channels.weights @ weights[17]
    scale = float(expected.abs().max())
    torch.testing.assert_close(to_feature.weights[..., 0], expected, atol=1e-4 * scale, rtol=1e-3)
