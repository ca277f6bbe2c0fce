"""Where the mock's state lives: one interface (``interface``), two engines.

``memory`` keeps everything in this process (the default, needing nothing); ``redis`` keeps
it in Redis, shared by any number of mock processes (with its Lua scripts in
``redis_scripts`` and its record encoding in ``redis_codec``). The operations above name
only the interface; ``mock_server.app`` picks the engine the settings ask for.
"""
