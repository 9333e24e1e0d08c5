"""Running the bot: dispatcher assembly, storage, middlewares, the update journal, polling and webhook."""
