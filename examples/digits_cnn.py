"""Train a small CNN on scikit-learn's bundled 8x8 digits (works offline, ~20 s on a laptop CPU).

    python examples/digits_cnn.py
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import nnscratch
from nnscratch.layers import Conv2D, Dense, Flatten, MaxPooling2D
from nnscratch.utils import to_categorical


def main():
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]          # (1797, 8, 8, 1), NHWC
    y = to_categorical(digits.target, 10)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0,
                                                        stratify=digits.target)
    nnscratch.set_random_seed(42)
    model = nnscratch.Sequential([
        nnscratch.Input((8, 8, 1)),
        Conv2D(16, 3, padding="same", activation="relu"),
        MaxPooling2D(),
        Conv2D(32, 3, padding="same", activation="relu"),
        MaxPooling2D(),
        Flatten(),
        Dense(64, activation="relu"),
        Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    model.fit(x_train, y_train, batch_size=32, epochs=20, validation_split=0.1, seed=42)
    loss, accuracy = model.evaluate(x_test, y_test)
    print(f"test loss {loss:.4f}, test accuracy {accuracy:.2%}")


if __name__ == "__main__":
    main()
