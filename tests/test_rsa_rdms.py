"""The RDMs data model: forms, validation, descriptors, stacking, rsatoolbox round trip."""
import numpy as np
import pytest
from scipy.spatial.distance import squareform

from brainalign.errors import DataError
from brainalign.rsa import RDMs, as_vectors, stack


def _rand_square(k, n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([squareform(rng.random(n * (n - 1) // 2)) for _ in range(k)])


def test_square_round_trip_matches_scipy_squareform_order():
    sq = _rand_square(3, 6)
    r = RDMs.from_square(sq)
    assert r.vectors.shape == (3, 15) and r.n_conditions == 6
    assert np.array_equal(r.vectors[1], squareform(sq[1]))
    assert np.array_equal(r.square(), sq)


@pytest.mark.parametrize("form", ["square", "stack", "vector", "vectors"])
def test_every_function_accepts_all_forms(form):
    sq = _rand_square(2, 5)
    x = {"square": sq[0], "stack": sq, "vector": squareform(sq[0]),
         "vectors": np.stack([squareform(s) for s in sq])}[form]
    vec, n = as_vectors(x)
    assert n == 5 and vec.shape[1] == 10
    assert np.array_equal(vec[0], squareform(sq[0]))


def test_non_square_asymmetric_and_diagonal_are_rejected():
    with pytest.raises(DataError, match="not square"):
        RDMs.from_square(np.zeros((4, 5)))
    sq = _rand_square(1, 4)[0]
    sq[0, 1] += 0.5
    with pytest.raises(DataError, match=r"not symmetric: entry \(0, 1\)"):
        RDMs.from_square(sq)
    with pytest.raises(DataError, match="not symmetric"):
        as_vectors(sq)  # the same check on plain arrays
    sq = _rand_square(1, 4)[0]
    sq[2, 2] = 1.0
    with pytest.raises(DataError, match="non-zero diagonal"):
        RDMs.from_square(sq)
    with pytest.raises(DataError, match="upper triangle of any square RDM"):
        as_vectors(np.ones(7))


def test_descriptors_indexing_subset_and_stack():
    sq = _rand_square(4, 5)
    r = RDMs.from_square(sq, descriptors={"subject": [1, 1, 2, 2], "time": [0.0, 0.1, 0.0, 0.1]},
                         condition_descriptors={"image": list("abcde")})
    s2 = r.subset(subject=2)
    assert len(s2) == 2 and np.array_equal(s2.square(), sq[2:])
    assert np.array_equal(r.subset(subject=[1, 2], time=0.1).descriptors["subject"], [1, 2])
    assert len(r[0]) == 1 and np.array_equal(r[[3, 0]].descriptors["time"], [0.1, 0.0])
    with pytest.raises(DataError, match="no RDM descriptor 'layer'"):
        r.subset(layer="V1")
    with pytest.raises(DataError, match="no RDM matches"):
        r.subset(subject=3)
    with pytest.raises(DataError, match="no RDM matches"):
        r.subset(subject="sub-01")  # wrong type: no match, not a conversion crash
    sub = r.subset_conditions([4, 0, 2])
    assert sub.n_conditions == 3 and list(sub.condition_descriptors["image"]) == ["e", "a", "c"]
    assert sub.square()[0, 0, 1] == sq[0, 4, 0]
    both = stack([r, r[0]], layer=["x"] * 5)
    assert len(both) == 5 and list(both.descriptors["subject"]) == [1, 1, 2, 2, 1]
    with pytest.raises(DataError, match="different conditions"):
        stack([r, _rand_square(1, 6)])
    with pytest.raises(DataError, match="one value per"):
        RDMs(sq, descriptors={"subject": [1, 2]})


def test_rsatoolbox_round_trip():
    pytest.importorskip("rsatoolbox")
    sq = _rand_square(3, 5)
    r = RDMs.from_square(sq, descriptors={"layer": ["V1", "V2", "IT"]}, measure="correlation")
    rt = r.to_rsatoolbox()
    assert np.allclose(rt.get_matrices(), sq)
    assert list(rt.rdm_descriptors["layer"]) == ["V1", "V2", "IT"]
    back = RDMs.from_rsatoolbox(rt)
    assert np.array_equal(back.vectors, r.vectors) and list(back.descriptors["layer"]) == ["V1", "V2", "IT"]
    assert "index" not in back.descriptors and back.measure == "correlation"
    # any function accepts rsatoolbox objects directly
    vec, n = as_vectors(rt)
    assert n == 5 and np.array_equal(vec, r.vectors)
