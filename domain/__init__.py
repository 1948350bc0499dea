"""The product's vocabulary, shared by every layer: question states, outbox job payloads and card actions.

It imports nothing of ours, so bot/, handlers/, store/ and the services can all depend on it."""
