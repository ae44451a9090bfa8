"""Tag every step of padded sequences with an LSTM; the padding is masked out of the loss (~10 s on a laptop CPU).

    python examples/sequence_tagging.py

Each sequence is 3 to 12 digits (1 to 9), padded with 0 to 12 steps. The tag of
a step says how its digit compares with the one before: 0 for the first
digit, 1 if larger, 2 if not. ``Embedding(mask_zero=True)`` marks the padding,
the LSTM leaves its state alone there, and the loss and the accuracy count
only the real steps (Keras 3's masked loss), so the padding's tags, whatever
they are, change nothing.
"""

import numpy as np

import nnscratch
from nnscratch.layers import LSTM, Dense, Embedding


def make_sequences(rng, count, steps=12):
    """Padded digit sequences (count, steps) and their tags (count, steps); tags at the padding are 0."""
    x = np.zeros((count, steps), dtype=np.int64)
    tags = np.zeros((count, steps), dtype=np.int64)
    for row, length in enumerate(rng.integers(3, steps + 1, count)):
        digits = rng.integers(1, 10, length)
        x[row, :length] = digits
        tags[row, 1:length] = np.where(digits[1:] > digits[:-1], 1, 2)
    return x, tags


def main(train=4000, epochs=8, verbose=1):
    """Train and evaluate; return the test accuracy over the real steps, as evaluate gives it and by hand."""
    rng = np.random.default_rng(0)
    x_train, y_train = make_sequences(rng, train)
    x_test, y_test = make_sequences(rng, 1000)
    nnscratch.set_random_seed(0)
    model = nnscratch.Sequential([
        nnscratch.Input((12,)),
        Embedding(10, 16, mask_zero=True),        # index 0 is padding: the mask starts here
        LSTM(32, return_sequences=True),          # a masked step leaves the state as it was
        Dense(3, activation="softmax"),           # the mask passes through: the loss counts real steps only
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if verbose:
        model.summary()
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, validation_split=0.1, seed=0, verbose=verbose)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    predicted = model.predict(x_test, verbose=0).argmax(axis=-1)
    real = x_test != 0
    by_hand = float((predicted == y_test)[real].mean())
    print(f"test loss {loss:.4f}, accuracy over the real steps {accuracy:.2%} "
          f"(by hand: {by_hand:.2%}; {real.sum()} of {real.size} steps are real)")
    return accuracy, by_hand


if __name__ == "__main__":
    main()
