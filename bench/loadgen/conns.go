package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/centrifugal/centrifuge-go"
	"github.com/gorilla/websocket"
)

// spec says what to open: the path's URL behind nginx, how to authenticate, and the rooms the
// connections are spread over (connection i joins rooms[i % len(rooms)]).
type spec struct {
	Path      string   `json:"path"`       // "centrifugo" or "channels"
	URL       string   `json:"url"`        // wss://<nginx>/connection/websocket, or wss://<nginx>/ws/chat/{room}/
	Origin    string   `json:"origin"`     // sent as Origin
	CAFile    string   `json:"ca_file"`    // the chain is verified against it, not the name
	Cookie    string   `json:"cookie"`     // Django's session (connect proxy, Channels' AuthMiddlewareStack)
	Token     string   `json:"token"`      // connection JWT (Centrifugo), ?token= (Channels)
	Rooms     []string `json:"rooms"`      // room names
	SubTokens []string `json:"sub_tokens"` // subscription JWT per room (Centrifugo; none: the subscribe proxy)
	Channel   string   `json:"channel"`    // Centrifugo channel format, e.g. "rooms:%s"
	Protocol  string   `json:"protocol"`   // Centrifugo client protocol: "json" (browsers') or "protobuf"
	Timeout   float64  `json:"timeout"`    // seconds for one handshake
}

// conn is one open connection.
type conn interface{ close() }

type centrifugoConn struct{ client *centrifuge.Client }

func (c centrifugoConn) close() { c.client.Close() }

type channelsConn struct{ ws *websocket.Conn }

func (c channelsConn) close() {
	deadline := time.Now().Add(2 * time.Second)
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
	_ = c.ws.Close()
}

// tlsConfig verifies the server's chain against caFile but not its name: clients connect to
// nginx's private address, and the certificate names the public host (as rtclient.tls does with
// check_hostname=False).
func tlsConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the chain check below
		VerifyConnection: func(state tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool()}
			for _, cert := range state.PeerCertificates[1:] {
				opts.Intermediates.AddCert(cert)
			}
			_, err := state.PeerCertificates[0].Verify(opts)
			return err
		},
	}, nil
}

func header(s spec) http.Header {
	h := http.Header{}
	if s.Origin != "" {
		h.Set("Origin", s.Origin)
	}
	if s.Cookie != "" {
		h.Set("Cookie", s.Cookie)
	}
	return h
}

// openCentrifugo connects with centrifuge-go (JSON or Protobuf protocol) and subscribes to the room's channel,
// with the subscription JWT when given; it returns when subscribed, or an error naming why not.
func openCentrifugo(s spec, tlsConf *tls.Config, i int, tally *receipts) (conn, error) {
	timeout := time.Duration(s.Timeout * float64(time.Second))
	config := centrifuge.Config{
		Token: s.Token, Header: header(s), TLSConfig: tlsConf, HandshakeTimeout: timeout,
		ReadTimeout: timeout, WriteTimeout: timeout, MaxReconnectDelay: 5 * time.Second,
	}
	newClient := centrifuge.NewJsonClient
	if s.Protocol == "protobuf" {
		newClient = centrifuge.NewProtobufClient
	}
	client := newClient(s.URL, config)
	room := i % len(s.Rooms)
	subConfig := centrifuge.SubscriptionConfig{}
	if len(s.SubTokens) > 0 {
		subConfig.Token = s.SubTokens[room]
	}
	sub, err := client.NewSubscription(fmt.Sprintf(s.Channel, s.Rooms[room]), subConfig)
	if err != nil {
		client.Close()
		return nil, err
	}
	done := make(chan error, 1)
	report := func(err error) {
		select {
		case done <- err:
		default:
		}
	}
	sub.OnPublication(func(e centrifuge.PublicationEvent) { tally.record(e.Data, unixNow()) })
	sub.OnSubscribed(func(centrifuge.SubscribedEvent) { report(nil) })
	sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) { report(fmt.Errorf("unsubscribed %d", e.Code)) })
	client.OnDisconnected(func(e centrifuge.DisconnectedEvent) { report(fmt.Errorf("disconnected %d", e.Code)) })
	if err := sub.Subscribe(); err != nil {
		client.Close()
		return nil, err
	}
	if err := client.Connect(); err != nil {
		client.Close()
		return nil, err
	}
	select {
	case err = <-done:
	case <-time.After(timeout):
		err = errors.New("timeout")
	}
	if err != nil {
		client.Close()
		return nil, err
	}
	return centrifugoConn{client}, nil
}

// frame is one frame of the app's Channels consumer (chat.consumers).
type frame struct {
	Type    string          `json:"type"`
	Message json.RawMessage `json:"message"`
}

// openChannels opens the room's consumer with gorilla/websocket and waits for its first frame,
// which must be the history; then every "message" frame's message goes to tally.
func openChannels(s spec, tlsConf *tls.Config, i int, tally *receipts) (conn, error) {
	timeout := time.Duration(s.Timeout * float64(time.Second))
	dialer := websocket.Dialer{TLSClientConfig: tlsConf, HandshakeTimeout: timeout}
	url := fmt.Sprintf(s.URL, s.Rooms[i%len(s.Rooms)])
	if s.Token != "" {
		url += "?token=" + s.Token
	}
	ws, response, err := dialer.Dial(url, header(s))
	if err != nil {
		if response != nil {
			return nil, fmt.Errorf("status %d", response.StatusCode)
		}
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	var first frame
	if err := ws.ReadJSON(&first); err != nil || first.Type != "history" {
		_ = ws.Close()
		if err == nil {
			err = fmt.Errorf("first frame %q", first.Type)
		}
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Time{})
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			now := unixNow()
			var f frame
			if json.Unmarshal(data, &f) == nil && f.Type == "message" {
				tally.record(f.Message, now)
			}
		}
	}()
	return channelsConn{ws}, nil
}
