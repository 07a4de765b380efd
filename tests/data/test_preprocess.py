import numpy as np
import pandas as pd

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
