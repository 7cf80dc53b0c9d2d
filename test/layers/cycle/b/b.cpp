int layer_b() { return 2; }
