"""Helpers every GIS and survey importer shares: numbers from text columns, keys from id columns."""
import numpy as np

from importers.common import feature_keys, network_keys, numbers


def test_numbers_read_decimal_points_commas_and_units():
    col = np.array(["12.5", "12,5", "DN300", "1.2 m", " -0,75", "约12米", None, "n/a", 7, 2.5], dtype=object)
    out = numbers(col, len(col))
    assert out[:6].tolist() == [12.5, 12.5, 300.0, 1.2, -0.75, 12.0]
    assert np.isnan(out[6:8]).all() and out[8:].tolist() == [7.0, 2.5]
    assert numbers(np.array([3, 4]), 2).tolist() == [3.0, 4.0]
    assert np.isnan(numbers(None, 3)).all()


def test_feature_keys_are_the_ids_only_where_every_feature_has_a_distinct_one():
    assert feature_keys(np.array([10.0, 11.0]), 2) == (["10", "11"], ["10", "11"])
    assert feature_keys(np.array(["a", "a", None], object), 3) == (["0", "1", "2"], ["a", "a", None])
    assert feature_keys(None, 2) == (["0", "1"], ["0", "1"])


def test_network_keys_tell_utilities_and_repeats_apart():
    utility = np.array(["water", "gas", "gas", "gas", "gas"])
    keys, repeated = network_keys(["1", "1", "2", "2", None], utility, "node")
    assert keys == ["node:water:1", "node:gas:1", "node:2", "node:2#3", "node#4"] and repeated == ["node:2"]
