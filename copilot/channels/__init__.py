"""Chat channels: WeCom, DingTalk and Feishu robots that answer in the chat through the same
pipeline as /api/ask, and the `chat` executor that posts confirmed actions to a group."""
