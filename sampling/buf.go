package sampling

import "gonum.org/v1/gonum/mat"

type denseBuf struct{ mat.Dense }
