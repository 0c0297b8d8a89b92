"""Training side of the chatbot: intents.json in, one self-contained checkpoint out.

Import the pieces from their modules (`training.classifier`, `training.pipeline`, ...); nothing heavy happens here.
"""
