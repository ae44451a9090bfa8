"""A siamese network on scikit-learn's bundled 8x8 digits: are two images the same digit? (~20 s, offline)

    python examples/siamese_digits.py

One small CNN tower reads *both* images of a pair: its layers are shared,
called once on each input, so both images are embedded by the same weights
and the gradient of each weight is the sum over the two calls
(docs/backprop.md 7b). The head compares the two embeddings through their
squared difference, ``(e_a - e_b)^2``, and says "same digit" or not.

The pairs for training and for the test are drawn from two disjoint sets
of images (a stratified split): the test images were never seen.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import nnscratch
from nnscratch.layers import Conv2D, Dense, Flatten, MaxPooling2D, Multiply, Subtract


def make_pairs(rng, images, labels, count):
    """``count`` pairs of images, half of the same digit and half of two different ones; the targets (1: same)."""
    by_digit = {digit: np.flatnonzero(labels == digit) for digit in np.unique(labels)}
    digits = np.array(sorted(by_digit))
    first, second, same = [], [], rng.random(count) < 0.5
    for alike in same:
        a, b = rng.choice(digits, 2, replace=False)
        first.append(rng.choice(by_digit[a]))
        second.append(rng.choice(by_digit[a if alike else b]))
    return [images[first], images[second]], same.astype(np.int64)


def siamese_model():
    """Two 8x8 inputs, one shared tower, the squared difference of the embeddings, one sigmoid."""
    image_a, image_b = nnscratch.Input((8, 8, 1), name="image_a"), nnscratch.Input((8, 8, 1), name="image_b")
    tower = [Conv2D(16, 3, padding="same", activation="relu"), MaxPooling2D(), Conv2D(32, 3, activation="relu"),
             Flatten(), Dense(32, activation="tanh", name="embedding")]
    embeddings = []
    for x in (image_a, image_b):
        for layer in tower:            # the same layer objects on both images: shared weights
            x = layer(x)
        embeddings.append(x)
    difference = Subtract()(embeddings)
    squared = Multiply()([difference, difference])
    return nnscratch.Model([image_a, image_b], Dense(1, activation="sigmoid", name="same")(squared))


def main(train=10000, epochs=12, verbose=1):
    """Train on pairs of 80% of the images, test on pairs of the other 20%; return the test accuracy."""
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")[..., None]          # (1797, 8, 8, 1), NHWC
    train_images, test_images, train_labels, test_labels = train_test_split(
        images, digits.target, test_size=0.2, random_state=0, stratify=digits.target)
    rng = np.random.default_rng(0)
    x, y = make_pairs(rng, train_images, train_labels, train)
    x_test, y_test = make_pairs(rng, test_images, test_labels, 2000)
    nnscratch.set_random_seed(0)
    model = siamese_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    if verbose:
        model.summary()
    model.fit(x, y, batch_size=64, epochs=epochs, validation_split=0.1, seed=0, verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, verbose=verbose)
    print(f"test: pairs of unseen images told same digit or not at {accuracy:.2%} (chance: 50%)")
    return accuracy


if __name__ == "__main__":
    main()
