package agent

import (
	"errors"
	"fmt"
	"io"
)

// put writes the request's PutData to req.Path, inside the root. The file
// appears, with its mode, only once PutEnd came and every byte is
// written.
func (s *server) put(r *request, req PutRequest) {
	name, err := cleanPath(req.Path)
	if err != nil {
		s.replyError(r.id, err)
		return
	}
	f, err := s.root.create(name, fmt.Sprintf("%08x", r.id))
	if err != nil {
		s.replyError(r.id, err)
		return
	}
	for {
		chunk, done := r.in.take()
		if done {
			break
		}
		if _, err := f.Write(chunk); err != nil {
			f.abort()
			s.replyError(r.id, err)
			return
		}
		r.in.consumed(len(chunk))
		if err := s.send(r.id, TypeAck, MarshalAck(uint32(len(chunk)))); err != nil {
			f.abort()
			return
		}
	}
	if r.ctx.Err() != nil {
		f.abort() // cancelled: no one waits for an answer
		return
	}
	if err := f.commit(req.Mode); err != nil {
		s.replyError(r.id, err)
		return
	}
	s.ok(r)
}

// get sends the regular file at p as GetData frames, then OK.
func (s *server) get(r *request, p string) {
	name, err := cleanPath(p)
	if err != nil {
		s.replyError(r.id, err)
		return
	}
	f, err := s.root.openRegular(name)
	if err != nil {
		s.replyError(r.id, err)
		return
	}
	defer f.Close()
	buf := make([]byte, MaxData)
	for r.ctx.Err() == nil {
		n, err := f.Read(buf)
		if n > 0 {
			if err := s.send(r.id, TypeGetData, buf[:n]); err != nil {
				return
			}
		}
		if errors.Is(err, io.EOF) {
			s.ok(r)
			return
		}
		if err != nil {
			s.replyError(r.id, err)
			return
		}
	}
}
