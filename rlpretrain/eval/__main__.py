from rlpretrain.eval.cli import main

main()
