int layer_a() { return 1; }
