from questline.cli.main import run

run()
