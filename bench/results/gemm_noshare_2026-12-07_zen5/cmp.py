import re,collections,statistics as st,sys
d=collections.defaultdict(lambda: collections.defaultdict(list))
for l in open(sys.argv[1]):
    m=re.match(r'(base|new) (\d) (Benchmark\S+)\s+\d+\s+([\d.]+) ns/op',l)
    if m: d[m.group(3)][m.group(1)].append(float(m.group(4)))
for k,v in d.items():
    b,n=v['base'],v['new']
    if not b or not n: continue
    print("%-80s base %s new %s  new/base median %.3f" % (k.replace('-2',''), ",".join("%.2f"%(x/1e6) for x in b), ",".join("%.2f"%(x/1e6) for x in n), st.median(n)/st.median(b)))
