from questline.cli import run

run()
