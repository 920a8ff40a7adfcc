package vitgpu

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/loract/loract/cmd/loract/internal/vit"
	"github.com/loract/loract/gpu"
)

// arena is a set of parameters stored contiguously: float32 master
// weights w, gradients g and Adam moments m and v, and, when the
// activations are bf16, the bf16 copy wb of w that the products read
// (refreshed by every Adam step). One Adam launch updates a whole arena
// or a contiguous part of it.
type arena struct {
	n          int
	w, g, m, v *gpu.Matrix // n×1 float32
	wb         *gpu.Matrix // n×1 bf16, or nil
}

// align is the element alignment of every parameter in an arena: 256
// bytes of float32, 128 of bf16, more than cuBLAS's 16-byte preference.
const align = 64

// add lays out a rows×cols parameter at the end of the arena.
func (a *arena) add(name string, rows, cols int) *param {
	off := (a.n + align - 1) / align * align
	a.n = off + rows*cols
	return &param{name: name, rows: rows, cols: cols, ar: a, off: off}
}

// alloc allocates the arena's buffers (zeroed).
func (a *arena) alloc(b *gpu.Backend, copyBF16 bool) error {
	n := max(a.n, 1)
	for _, p := range []**gpu.Matrix{&a.w, &a.g, &a.m, &a.v} {
		m, err := b.NewMatrix(n, 1, gpu.Float32)
		if err != nil {
			return err
		}
		*p = m
	}
	if copyBF16 {
		m, err := b.NewMatrix(n, 1, gpu.BFloat16)
		if err != nil {
			return err
		}
		a.wb = m
	}
	return nil
}

func (a *arena) free(b *gpu.Backend) {
	for _, m := range []*gpu.Matrix{a.w, a.g, a.m, a.v, a.wb} {
		if m != nil {
			b.Free(m)
		}
	}
}

// span returns elements [off, off+n) of buf (one of the arena's buffers)
// as an n×1 column.
func span(buf *gpu.Matrix, off, n int) *gpu.Matrix {
	return gpu.ColMajor(buf.Ptr()+uintptr(off*buf.DType().Size()), n, 1, n, buf.DType())
}

// param is one tensor of an arena: rows×cols, row-major as in package vit
// (a linear layer's weight is in×out).
type param struct {
	name       string
	rows, cols int
	ar         *arena
	off        int
}

func (p *param) view(buf *gpu.Matrix) *gpu.Matrix {
	return gpu.RowMajor(buf.Ptr()+uintptr(p.off*buf.DType().Size()), p.rows, p.cols, p.cols, buf.DType())
}

// W returns the float32 master weight, G its gradient.
func (p *param) W() *gpu.Matrix { return p.view(p.ar.w) }
func (p *param) G() *gpu.Matrix { return p.view(p.ar.g) }

// C returns the weight the products read: the bf16 copy, or the master.
func (p *param) C() *gpu.Matrix {
	if p.ar.wb != nil {
		return p.view(p.ar.wb)
	}
	return p.W()
}

// ptr returns the address of the float32 master, which the kernels read
// for biases, gains and positions.
func (p *param) ptr() uintptr { return p.ar.w.Ptr() + uintptr(4*p.off) }

// linear is y = x·W + b + s·(x·A)·B (vit.Linear); la and lb are nil for a
// layer without LoRA.
type linear struct {
	name    string
	in, out int
	w, b    *param
	la, lb  *param
}

// layerNorm holds a LayerNorm's gain and shift.
type layerNorm struct {
	name string
	g, b *param
}

// block is one pre-norm encoder block (vit.Block).
type block struct {
	name                 string
	ln1, ln2             layerNorm
	q, k, v, o, fc1, fc2 linear
	linearsInOrder       [6]*linear // q, k, v, o, fc1, fc2
}

// layout places every parameter of the model described by c: the base
// parameters in vit's order with the classification head last (so that
// fine-tuning's Adam updates the head and the LoRA arena only), and the
// LoRA adapters of rank r in a second arena.
func (m *Model) layout(c vit.Config, r int) {
	d := c.Dim
	lin := func(ar *arena, name string, in, out int) linear {
		return linear{name: name, in: in, out: out, w: ar.add(name+".w", in, out), b: ar.add(name+".b", 1, out)}
	}
	ln := func(name string) layerNorm {
		return layerNorm{name: name, g: m.base.add(name+".g", 1, d), b: m.base.add(name+".b", 1, d)}
	}
	m.embed = lin(&m.base, "embed", c.Patch*c.Patch, d)
	m.pos = m.base.add("pos", c.Tokens(), d)
	m.blocks = make([]block, c.Depth)
	for i := range m.blocks {
		n := fmt.Sprintf("blk%d", i)
		bk := &m.blocks[i]
		bk.name = n
		bk.ln1, bk.ln2 = ln(n+".ln1"), ln(n+".ln2")
		bk.q, bk.k, bk.v, bk.o = lin(&m.base, n+".q", d, d), lin(&m.base, n+".k", d, d), lin(&m.base, n+".v", d, d), lin(&m.base, n+".o", d, d)
		bk.fc1, bk.fc2 = lin(&m.base, n+".fc1", d, c.MLP), lin(&m.base, n+".fc2", c.MLP, d)
		bk.linearsInOrder = [6]*linear{&bk.q, &bk.k, &bk.v, &bk.o, &bk.fc1, &bk.fc2}
	}
	m.norm = ln("norm")
	m.headOff = (m.base.n + align - 1) / align * align
	m.head = lin(&m.base, "head", d, c.Classes)
	for i := range m.blocks {
		for _, l := range m.blocks[i].linearsInOrder {
			l.la = m.lora.add(l.name+".lora_a", l.in, r)
			l.lb = m.lora.add(l.name+".lora_b", r, l.out)
		}
	}
}

// baseParams lists the base parameters in vit.Model's order (its
// params(true) without adapters); loraParams the adapters in AddLoRA's.
func (m *Model) baseParams() []*param {
	ps := []*param{m.embed.w, m.embed.b, m.pos}
	for i := range m.blocks {
		bk := &m.blocks[i]
		ps = append(ps, bk.ln1.g, bk.ln1.b, bk.ln2.g, bk.ln2.b)
		for _, l := range bk.linearsInOrder {
			ps = append(ps, l.w, l.b)
		}
	}
	return append(ps, m.norm.g, m.norm.b, m.head.w, m.head.b)
}

func (m *Model) loraParams() []*param {
	var ps []*param
	for i := range m.blocks {
		for _, l := range m.blocks[i].linearsInOrder {
			ps = append(ps, l.la, l.lb)
		}
	}
	return ps
}

// cpuBase returns the CPU model's base parameters in baseParams' order.
func cpuBase(v *vit.Model) []*mat.Dense {
	ds := []*mat.Dense{v.Embed.W.W, v.Embed.B.W, v.Pos.W}
	for _, b := range v.Blocks {
		ds = append(ds, b.LN1.Gamma.W, b.LN1.Beta.W, b.LN2.Gamma.W, b.LN2.Beta.W)
		for _, l := range []*vit.Linear{b.Q, b.K, b.V, b.O, b.F1, b.F2} {
			ds = append(ds, l.W.W, l.B.W)
		}
	}
	return append(ds, v.Norm.Gamma.W, v.Norm.Beta.W, v.Head.W.W, v.Head.B.W)
}

// upload copies host matrices into parameters of the same shapes.
func (m *Model) upload(ps []*param, ds []*mat.Dense) error {
	if len(ps) != len(ds) {
		return fmt.Errorf("vitgpu: %d host tensors for %d parameters", len(ds), len(ps))
	}
	for i, p := range ps {
		if r, c := ds[i].Dims(); r != p.rows || c != p.cols {
			return fmt.Errorf("vitgpu: %s is %d×%d on the host, %d×%d on the device", p.name, r, c, p.rows, p.cols)
		}
		if err := m.b.Upload(p.W(), ds[i]); err != nil {
			return err
		}
	}
	return nil
}

// LoadBase copies the base weights of the CPU model v, which must have
// the device model's configuration, and refreshes their bf16 copies.
func (m *Model) LoadBase(v *vit.Model) error {
	if v.Cfg != m.cfg.Model {
		return fmt.Errorf("vitgpu: CPU model %+v for device model %+v", v.Cfg, m.cfg.Model)
	}
	if err := m.upload(m.baseParams(), cpuBase(v)); err != nil {
		return err
	}
	return m.recast(&m.base)
}

// LoadLoRA copies the LoRA adapters of the CPU model v (after
// vit.Model.AddLoRA with the device model's rank and scale) and keeps
// them as the adapters' initial value for Restore.
func (m *Model) LoadLoRA(v *vit.Model) error {
	var ds []*mat.Dense
	for _, b := range v.Blocks {
		for _, l := range []*vit.Linear{b.Q, b.K, b.V, b.O, b.F1, b.F2} {
			if l.LA == nil {
				return fmt.Errorf("vitgpu: CPU layer %s has no LoRA adapter", l.Name)
			}
			if l.Scale != m.cfg.LoRAScale {
				return fmt.Errorf("vitgpu: CPU layer %s has LoRA scale %g, the device model %g", l.Name, l.Scale, m.cfg.LoRAScale)
			}
			ds = append(ds, l.LA.W, l.LB.W)
		}
	}
	if err := m.upload(m.loraParams(), ds); err != nil {
		return err
	}
	if err := m.keep(&m.loraInit, &m.lora); err != nil {
		return err
	}
	return m.recast(&m.lora)
}

// keep copies the arena's weights into *dst, allocating it first if nil.
func (m *Model) keep(dst **gpu.Matrix, a *arena) error {
	if *dst == nil {
		s, err := m.b.NewMatrix(max(a.n, 1), 1, gpu.Float32)
		if err != nil {
			return err
		}
		*dst = s
	}
	return m.b.Copy(*dst, a.w)
}

// recast refreshes the bf16 copy of an arena's weights.
func (m *Model) recast(a *arena) error {
	if a.wb == nil {
		return nil
	}
	return m.k.castBF16(a.wb, a.w)
}

// Snapshot keeps a copy of the base weights for Restore.
func (m *Model) Snapshot() error { return m.keep(&m.baseSnap, &m.base) }

// KeepTrained keeps a copy of every weight, base and adapters, for
// LoadTrained: RunDemo keeps the baseline run's fine-tuned model, to
// measure every run's gradients on the same weights.
func (m *Model) KeepTrained() error {
	if err := m.keep(&m.trainedBase, &m.base); err != nil {
		return err
	}
	return m.keep(&m.trainedLoRA, &m.lora)
}

// LoadTrained sets every weight to the last KeepTrained copy and refreshes
// the bf16 copies; the Adam moments are left as they are (a Restore
// starts the next run afresh).
func (m *Model) LoadTrained() error {
	if m.trainedBase == nil || m.trainedLoRA == nil {
		return fmt.Errorf("vitgpu: LoadTrained before KeepTrained")
	}
	if err := m.load(&m.base, m.trainedBase); err != nil {
		return err
	}
	return m.load(&m.lora, m.trainedLoRA)
}

// load sets an arena's weights to the copy src (keep's) and refreshes
// their bf16 copy.
func (m *Model) load(a *arena, src *gpu.Matrix) error {
	if err := m.b.Copy(a.w, src); err != nil {
		return err
	}
	return m.recast(a)
}

// Restore sets the base weights to the last Snapshot and the adapters to
// their LoadLoRA value, zeroes every Adam moment and refreshes the bf16
// copies: a fine-tuning run starts from the same state as the one before.
func (m *Model) Restore() error {
	if m.baseSnap == nil || m.loraInit == nil {
		return fmt.Errorf("vitgpu: Restore before Snapshot and LoadLoRA")
	}
	if err := m.load(&m.base, m.baseSnap); err != nil {
		return err
	}
	if err := m.load(&m.lora, m.loraInit); err != nil {
		return err
	}
	for _, a := range []*arena{&m.base, &m.lora} {
		for _, x := range []*gpu.Matrix{a.m, a.v, a.g} {
			if err := m.k.fill(x, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// Grads returns the gradients of the trainable parameters, by vit's
// parameter names: every base parameter in pre-training, the head and the
// adapters with LoRA on.
func (m *Model) Grads() (map[string]*mat.Dense, error) {
	ps := m.baseParams()
	if m.loraOn {
		ps = append([]*param{m.head.w, m.head.b}, m.loraParams()...)
	}
	out := map[string]*mat.Dense{}
	for _, p := range ps {
		var d mat.Dense
		if err := m.b.Download(&d, p.G()); err != nil {
			return nil, err
		}
		out[p.name] = &d
	}
	return out, nil
}

// Weights returns the float32 master weights of every parameter by name.
func (m *Model) Weights() (map[string]*mat.Dense, error) {
	out := map[string]*mat.Dense{}
	for _, p := range append(m.baseParams(), m.loraParams()...) {
		var d mat.Dense
		if err := m.b.Download(&d, p.W()); err != nil {
			return nil, err
		}
		out[p.name] = &d
	}
	return out, nil
}
