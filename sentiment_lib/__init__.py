"""IMDB sentiment analysis with LSTM-family models."""
