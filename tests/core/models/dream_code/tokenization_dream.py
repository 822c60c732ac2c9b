"""Test fixture: a minimal stand-in for the `tokenization_dream.py` that Dream ships with its weights.

Written for dllmrl's tests (not Dream's file). Dream's tokenizer is a slow (Python) byte-level BPE
tokenizer reached through tokenizer_config.json's auto_map, so it needs trust_remote_code; this one
is a slow character-level tokenizer reached the same way (vocab.json: one id per character; the
special tokens are added tokens, as in Dream's tokenizer_config.json).
"""

import json
import os

from transformers import PreTrainedTokenizer


class DreamTokenizer(PreTrainedTokenizer):
    vocab_files_names = {"vocab_file": "vocab.json"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file, **kwargs):
        with open(vocab_file, encoding="utf-8") as handle:
            self.encoder = json.load(handle)
        self.decoder = {i: c for c, i in self.encoder.items()}
        super().__init__(**kwargs)

    @property
    def vocab_size(self):
        return len(self.encoder)

    def get_vocab(self):
        return dict(self.encoder, **self.added_tokens_encoder)

    def _tokenize(self, text, **kwargs):
        return list(text)

    def _convert_token_to_id(self, token):
        return self.encoder.get(token, self.unk_token_id)

    def _convert_id_to_token(self, index):
        return self.decoder.get(index)

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        path = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + "vocab.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.encoder, handle)
        return (path,)
