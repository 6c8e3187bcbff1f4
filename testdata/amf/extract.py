# Extract de-chunked RTMP message payloads from a pcap, using stream offsets
# given in the sidecar .messages.tsv. One TCP connection assumed.
import struct, sys
def streams(path):
    d=open(path,'rb').read()
    magic=struct.unpack('<I',d[:4])[0]
    assert magic==0xa1b2c3d4, hex(magic)
    link=struct.unpack('<I',d[20:24])[0]
    pos=24; segs={}; isn={}
    while pos+16<=len(d):
        ts,tu,caplen,origlen=struct.unpack('<IIII',d[pos:pos+16]); pos+=16
        pkt=d[pos:pos+caplen]; pos+=caplen
        if link==1: pkt=pkt[14:]
        elif link==113: pkt=pkt[16:]
        elif link==0: pkt=pkt[4:]
        if pkt[0]>>4!=4: continue
        ihl=(pkt[0]&15)*4; tot=struct.unpack('>H',pkt[2:4])[0]
        if pkt[9]!=6: continue
        src=pkt[12:16]; dst=pkt[16:20]; tcp=pkt[ihl:tot]
        sp,dp,seq=struct.unpack('>HHI',tcp[:8]); flags=tcp[13]; off=(tcp[12]>>4)*4
        key=(sp,dp); data=tcp[off:]
        if flags&2: isn[key]=seq+1; continue
        if data: segs.setdefault(key,{})[seq]=data
    out={}
    for key,ss in segs.items():
        base=isn[key]; buf=bytearray()
        for seq in sorted(ss):
            o=(seq-base)&0xffffffff
            dat=ss[seq]
            if o>len(buf): raise Exception('hole')
            buf[o:o+len(dat)]=dat
        out[key]=bytes(buf)
    return out
def dechunk(stream, off, length, chunk):
    fmt=stream[off]>>6; cs=stream[off]&63; p=off+1
    if cs==0: p+=1
    elif cs==1: p+=2
    p+={0:11,1:7,2:3,3:0}[fmt]
    ts=int.from_bytes(stream[off+1+(cs==0)+(cs==1)*2:][:3],'big') if fmt<3 else 0
    if ts==0xffffff: p+=4
    payload=b''
    while len(payload)<length:
        n=min(chunk,length-len(payload))
        payload+=stream[p:p+n]; p+=n
        if len(payload)<length:
            assert stream[p]>>6==3, hex(stream[p]); p+=1
    return payload
if __name__=='__main__':
    path,direction,off,length,chunk,outp=sys.argv[1:]
    st=streams(path)
    keys=sorted(st, key=lambda k:len(st[k]))
    # client->server: the direction whose destination port is the server port (19350+)
    c2s=[k for k in st if 19350<=k[1]<=19359][0]; s2c=(c2s[1],c2s[0])
    s=st[c2s if direction=='c2s' else s2c]
    open(outp,'wb').write(dechunk(s,int(off),int(length),int(chunk)))
