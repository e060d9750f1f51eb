"""The servers a user would pick instead of FlashML, run by ``bench.run`` beside it: NVIDIA Triton's server core
through PyTriton, and Seldon MLServer, each in its own virtual environment under ``bench/.peers/``
(``python -m bench.peers.setup`` makes them). Their settings, files and command lines are plain data
(``config.py``); ``launch.py`` starts and stops them; ``pytriton_server.py`` and ``mlserver_model.py`` run inside
the peers' environments, never in FlashML's."""
