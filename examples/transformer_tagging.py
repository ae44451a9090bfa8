"""A small Transformer encoder with two inputs and two outputs, on padded digit sequences (~30 s on a laptop CPU).

    python examples/transformer_tagging.py

Each sequence is 3 to 12 digits (1 to 9), padded with 0. The model reads the
digits and their positions (two inputs: 1, 2, ... at the digits, 0 at the
padding) and answers two questions (two outputs):

* ``record``, a tag a step: is this digit larger than every digit before it?
  (The first digit always is.) Only the real steps count in its loss.
* ``largest``, a label a sequence: which digit is the largest?

One encoder block, as in Vaswani et al. (2017): self-attention over the
steps (``MultiHeadAttention``; the padding's mask hides the padded keys),
a residual connection and ``LayerNormalization``, then a position-wise
feed-forward layer, a residual connection and ``LayerNormalization`` again.
The attention has no order of its own: the position embedding gives it one.
The loss is ``loss_weights`` times each output's loss, summed.
"""

import numpy as np

import nnscratch
from nnscratch.layers import (Add, Dense, Embedding, GlobalAveragePooling1D, LayerNormalization,
                              MultiHeadAttention)


def make_sequences(rng, count, steps=12):
    """Digits (count, steps), positions (count, steps), record tags (count, steps) and the largest digit (count,)."""
    digits = np.zeros((count, steps), dtype=np.int64)
    records = np.zeros((count, steps), dtype=np.int64)
    for row, length in enumerate(rng.integers(3, steps + 1, count)):
        sequence = rng.integers(1, 10, length)
        digits[row, :length] = sequence
        before = np.maximum.accumulate(np.concatenate([[0], sequence[:-1]]))
        records[row, :length] = sequence > before
    positions = np.where(digits != 0, np.arange(1, steps + 1), 0)
    return digits, positions, records, digits.max(axis=1) - 1            # largest digit 1..9 as class 0..8


def encoder_model(steps=12, width=32, heads=4):
    """digits, positions -> embeddings -> one encoder block -> (record tags, largest digit)."""
    digits, positions = nnscratch.Input((steps,), name="digits"), nnscratch.Input((steps,), name="positions")
    x = Add()([Embedding(10, width, mask_zero=True)(digits),          # 0 is padding: the mask starts here
               Embedding(steps + 1, width, mask_zero=True)(positions)])
    attended = MultiHeadAttention(heads, width // heads)(x, x)        # self-attention; padded keys hidden
    x = LayerNormalization()(Add()([x, attended]))
    fed = Dense(width)(Dense(2 * width, activation="relu")(x))
    x = LayerNormalization()(Add()([x, fed]))
    record = Dense(2, activation="softmax", name="record")(x)           # a tag a step, masked at the padding
    largest = Dense(9, activation="softmax", name="largest")(GlobalAveragePooling1D()(x))
    return nnscratch.Model([digits, positions], [record, largest])


def main(train=4000, epochs=8, verbose=1):
    """Train and evaluate; return the test logs (accuracies over the real steps and over the sequences)."""
    rng = np.random.default_rng(0)
    digits, positions, records, largest = make_sequences(rng, train)
    test = make_sequences(rng, 1000)
    nnscratch.set_random_seed(0)
    model = encoder_model()
    model.compile(optimizer=nnscratch.optimizers.Adam(3e-3),
                  loss={"record": "sparse_categorical_crossentropy", "largest": "sparse_categorical_crossentropy"},
                  loss_weights={"record": 1.0, "largest": 0.5},
                  metrics={"record": ["accuracy"], "largest": ["accuracy"]})
    if verbose:
        model.summary()
    model.fit({"digits": digits, "positions": positions}, {"record": records, "largest": largest}, batch_size=64,
              epochs=epochs, validation_split=0.1, seed=0, verbose=verbose)
    logs = model.evaluate([test[0], test[1]], [test[2], test[3]], return_dict=True)
    print(f"test: record tags right at {logs['record_accuracy']:.2%} of the real steps, largest digit right in "
          f"{logs['largest_accuracy']:.2%} of the sequences (loss {logs['loss']:.4f})")
    return logs


if __name__ == "__main__":
    main()
