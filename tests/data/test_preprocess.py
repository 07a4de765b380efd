import numpy as np
import pandas as pd
import pytest

from fairleak.data import TabularPreprocessor


def test_fitted_on_training_rows_and_unseen_categories_are_zero():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "b"]})
    test = pd.DataFrame({"x": [10.0], "c": ["never-seen"]})
    pre = TabularPreprocessor().fit(train)
    Xtr = pre.transform(train)
    assert Xtr.dtype == np.float32 and Xtr.shape == (4, 3)
    np.testing.assert_allclose(Xtr[:, 0].mean(), 0.0, atol=1e-6)  # standardised on train rows
    Xte = pre.transform(test)
    np.testing.assert_allclose(Xte[0, 1:], 0.0)  # unseen category: all zeros, no crash
    assert Xte[0, 0] > 3  # scaled with the training mean/std, not refitted
    assert pre.feature_names_out[0] == "num__x"


def test_declared_schema_reads_nothing_from_the_rows():
    """With every column declared (vocabulary, public bounds) the encoding is the same whatever
    rows it is fitted on: no private statistic (vocabulary, mean, scale) reaches the features."""
    import pandas as pd

    from fairleak.data import TabularPreprocessor

    schema = {"categories": {"sex": ["Female", "Male", "Other"]}, "bounds": {"age": (17, 90)}}
    a = pd.DataFrame({"age": [20, 30, 80], "sex": ["Female", "Male", "Female"]})
    b = pd.DataFrame({"age": [60, 61], "sex": ["Male", "Male"]})
    probe = pd.DataFrame({"age": [10, 53.5, 95], "sex": ["Other", "Female", "Unseen"]})
    pa, pb = (TabularPreprocessor(**schema).fit(d) for d in (a, b))
    np.testing.assert_array_equal(pa.transform(probe), pb.transform(probe))
    assert pa.fitted_from_data_ == []
    out = pa.transform(probe)
    assert out[:, 0].tolist() == [-1.0, 0.0, 1.0]  # scaled from the bounds, clipped
    assert out[0, 1:].tolist() == [0, 0, 1] and out[2, 1:].tolist() == [0, 0, 0]  # declared vocabulary
    # undeclared columns are learnt from the rows, and say so
    assert TabularPreprocessor(bounds={"age": (17, 90)}).fit(a).fitted_from_data_ == ["sex"]
    with pytest.raises(ValueError, match=r"\['income'\]"):
        TabularPreprocessor(bounds={"income": (0, 1)}).fit(a)
    with pytest.raises(ValueError, match="not numeric"):
        TabularPreprocessor(bounds={"sex": (0, 1)}).fit(a)
